"""Raw HTTP for the server tests: paths go out exactly as written, bodies as given (bytes, or JSON for objects)."""

import http.client
import json
import time
import urllib.parse


def call(url, method, path, body=None, headers=None):
    """Returns (status, decoded JSON or text) for one request to the server at `url`."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    if response.getheader("Content-Type", "").startswith("application/json"):
        return response.status, json.loads(data)
    return response.status, data.decode("utf-8", "replace")


def predict(url, model, body, version=None):
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version is not None else "") + ":predict"
    return call(url, "POST", path, body)


def wait_for(condition, timeout=15.0, interval=0.05):
    """Polls `condition()` until it returns something true; returns it, or fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
