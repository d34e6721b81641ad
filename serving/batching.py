"""Server-side batching: concurrent requests for one signature are merged into one model call."""

import asyncio

import numpy as np


class _Batch:
    def __init__(self):
        self.items = []  # (arrays, rows, future)
        self.rows = 0
        self.timer = None


class Batcher:
    """Queues the requests for one signature and runs them as one call.

    A batch runs once it holds `max_batch_size` examples, or `timeout_seconds` after its first request, whichever
    comes first; while it runs, the next one fills. Requests merge only when their inputs agree past the batch
    dimension. If a merged call fails, each of its requests runs again alone, so a bad request fails only itself.
    Use it from one event loop.

    Args:
        run: blocking function from input arrays by name to output arrays by name (batch first).
        max_batch_size: most examples in one call; a request at least this large runs alone.
        timeout_seconds: longest a request waits for others to join it.
        executor: the `concurrent.futures` executor `run` is called in; None for the loop's default.

    Example:
    ```python
    batcher = Batcher(signature.call, max_batch_size=16, timeout_seconds=0.002)
    outputs = await batcher.submit({"text": np.array([b"good film"], dtype=object)}, rows=1)
    ```
    """

    def __init__(self, run, max_batch_size, timeout_seconds, executor=None):
        self.run = run
        self.max_batch_size = max_batch_size
        self.timeout_seconds = timeout_seconds
        self.executor = executor
        self.calls = 0  # model calls made
        self.examples = 0  # examples in them
        self._pending = {}  # inputs' shapes past the batch dimension -> _Batch
        self._running = set()

    async def submit(self, arrays, rows):
        """Runs `arrays` (`rows` examples) in some batch and returns this request's slice of the outputs."""
        loop = asyncio.get_running_loop()
        if rows >= self.max_batch_size or any(array.ndim == 0 for array in arrays.values()):
            return await self._call(loop, arrays, rows)
        key = tuple((name, array.shape[1:], array.dtype.str) for name, array in sorted(arrays.items()))
        batch = self._pending.get(key)
        if batch is not None and batch.rows + rows > self.max_batch_size:
            self._flush(key)
            batch = None
        if batch is None:
            batch = self._pending[key] = _Batch()
            batch.timer = loop.call_later(self.timeout_seconds, self._flush, key)
        future = loop.create_future()
        batch.items.append((arrays, rows, future))
        batch.rows += rows
        if batch.rows >= self.max_batch_size:
            self._flush(key)
        return await future

    def _flush(self, key):
        batch = self._pending.pop(key, None)
        if batch is None:
            return
        batch.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._execute(batch))
        self._running.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._running.discard)

    async def _execute(self, batch):
        loop = asyncio.get_running_loop()
        items = batch.items
        if len(items) > 1:
            names = list(items[0][0])
            merged = {name: np.concatenate([arrays[name] for arrays, _, _ in items]) for name in names}
            try:
                outputs = await self._call(loop, merged, batch.rows)
            except Exception:  # retried request by request below, so only the bad one fails
                outputs = None
            if outputs is not None and all(
                value.ndim and value.shape[0] == batch.rows for value in outputs.values()
            ):
                offset = 0
                for _, rows, future in items:
                    _resolve(future, {name: value[offset : offset + rows] for name, value in outputs.items()})
                    offset += rows
                return
        for arrays, rows, future in items:
            try:
                _resolve(future, await self._call(loop, arrays, rows))
            except Exception as error:  # delivered to the request that caused it
                if not future.done():
                    future.set_exception(error)

    async def _call(self, loop, arrays, rows):
        self.calls += 1
        self.examples += rows
        return await loop.run_in_executor(self.executor, self.run, arrays)


def _resolve(future, value):
    if not future.done():  # the client may have gone away
        future.set_result(value)
