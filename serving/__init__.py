"""A REST model server that speaks TF Serving's API for the SavedModels under `saved_models/`.

`models` finds, loads and unloads versions; `payload` turns JSON into tensors and back; `batching` merges
concurrent requests; `server` is the aiohttp application and the `keras-tasks serve` entry point; `client` and
`loadtest` are its callers.
"""
