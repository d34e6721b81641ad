"""TF Serving's REST formats for one signature: a JSON request -> numpy arrays, output arrays -> JSON.

Row format: `{"instances": [example, ...]}` answers `{"predictions": [...]}`; columnar format:
`{"inputs": {name: batch}}` answers `{"outputs": {name: batch}}`. A signature with one input may leave the name
out, one with one output drops it. Binary strings travel as `{"b64": "..."}`; inputs whose name ends in `_bytes`
must, and outputs whose name ends in `_bytes` always do; images among those inputs are refused when their headers
declare more pixels than the limit. Every refusal is a `BadRequest` naming the input, the
example and what was expected.
"""

import base64
import binascii
import dataclasses
import math

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from keras_tasks.serving import image_header


class BadRequest(ValueError):
    """A request refused with HTTP 400; the message says what was wrong and what was expected."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Per-request bounds, so one request cannot take a server's memory.

    Args:
        max_instances: most examples in one request.
        max_string_bytes: longest string (after base64 decoding) in one input value.
        max_image_pixels: most pixels (width x height x frames) an image in a `*_bytes` input may declare; a few
            kilobytes of PNG or JPEG can decode to gigabytes inside the model.
    """

    max_instances: int = 1024
    max_string_bytes: int = 1 << 20
    max_image_pixels: int = 40_000_000


def dtype_name(dtype):
    """TF Serving's name for a dtype, e.g. `DT_STRING`, `DT_FLOAT`."""
    return types_pb2.DataType.Name(tf.dtypes.as_dtype(dtype).as_datatype_enum)


def _json_type(value):
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string"


def _is_b64(value):
    return isinstance(value, dict) and list(value) == ["b64"]


# === Requests ===


def decode_request(body, signature, limits=Limits()):
    """Turns a parsed request body into (arrays by input name, number of examples, row_format)."""
    names = list(signature.inputs)
    has_instances, has_inputs = "instances" in body, "inputs" in body
    if has_instances == has_inputs:
        raise BadRequest(
            "the request must have exactly one of 'instances' (row format) or 'inputs' (columnar format), "
            f"got {'both' if has_instances else 'neither'}"
        )
    if has_instances:
        columns = _instances_to_columns(body["instances"], names, limits)
    else:
        columns = _inputs_to_columns(body["inputs"], names, limits)
    arrays = {name: _to_array(name, columns[name], signature.inputs[name], limits) for name in names}
    sizes = {name: array.shape[0] for name, array in arrays.items() if array.ndim}
    if len(set(sizes.values())) > 1:
        raise BadRequest(f"the inputs have different numbers of examples: {sizes}")
    rows = next(iter(sizes.values()), 1)
    if rows == 0:
        raise BadRequest("the request has no examples: send at least one")
    return arrays, rows, has_instances


def _check_names(where, given, names):
    missing = [name for name in names if name not in given]
    unknown = [name for name in given if name not in names]
    if missing or unknown:
        raise BadRequest(
            f"{where}: "
            + "; ".join(
                part
                for part in (
                    f"missing input(s) {missing}" if missing else "",
                    f"unknown input(s) {unknown}" if unknown else "",
                )
                if part
            )
            + f"; the signature's inputs are {names}"
        )


def _instances_to_columns(instances, names, limits):
    if not isinstance(instances, list):
        raise BadRequest(f"'instances' must be a list with one element per example, got {_json_type(instances)}")
    if not instances:
        raise BadRequest("'instances' is empty: send at least one example")
    if len(instances) > limits.max_instances:
        raise BadRequest(f"too many instances: {len(instances)}; the limit is {limits.max_instances} (--max-instances)")
    columns = {name: [] for name in names}
    for index, instance in enumerate(instances):
        if len(names) == 1 and not (isinstance(instance, dict) and not _is_b64(instance)):
            columns[names[0]].append(instance)
            continue
        if not isinstance(instance, dict) or _is_b64(instance):
            raise BadRequest(
                f"instance {index}: expected an object with the inputs {names}, got {_json_type(instance)}"
            )
        _check_names(f"instance {index}", instance, names)
        for name in names:
            columns[name].append(instance[name])
    return columns


def _inputs_to_columns(inputs, names, limits):
    if len(names) == 1 and not (isinstance(inputs, dict) and not _is_b64(inputs)):
        columns = {names[0]: inputs}
    elif not isinstance(inputs, dict) or _is_b64(inputs):
        raise BadRequest(f"'inputs' must be an object mapping the input names {names} to values")
    else:
        _check_names("'inputs'", inputs, names)
        columns = inputs
    for name in names:
        value = columns[name]
        if isinstance(value, list) and len(value) > limits.max_instances:
            raise BadRequest(
                f"too many instances: input '{name}' has {len(value)}; the limit is {limits.max_instances} "
                "(--max-instances)"
            )
    return columns


def _nested_shape(name, value, rank):
    """Returns (shape, flat leaves) of a rectangular nested list of the given rank."""
    shape, level = [], [value]
    for depth in range(rank):
        sizes = set()
        deeper = []
        for item in level:
            if not isinstance(item, list):
                raise BadRequest(
                    f"input '{name}' expects {rank} nested list level(s) (the first one is the batch), "
                    f"found {_json_type(item)} at level {depth + 1}"
                )
            sizes.add(len(item))
            deeper.extend(item)
        if len(sizes) > 1:
            raise BadRequest(f"input '{name}' is ragged: lists at level {depth + 1} have lengths {sorted(sizes)}")
        shape.append(sizes.pop() if sizes else 0)
        level = deeper
    return shape, level


def _to_array(name, value, spec, limits):
    expected = spec.shape.as_list()
    shape, leaves = _nested_shape(name, value, len(expected))
    shown = [-1 if want is None else want for want in expected]
    if any(want is not None and want != got for want, got in zip(expected, shape)):
        raise BadRequest(f"input '{name}' expects shape {shown} (-1: any size), got {shape}")
    if any(isinstance(leaf, list) for leaf in leaves):
        raise BadRequest(
            f"input '{name}' expects shape {shown}: the values are nested deeper than {len(shown)} level(s)"
        )
    per_example = max(1, math.prod(shape[1:]))
    if spec.dtype == tf.string:
        binary = name.endswith("_bytes")
        values = [_string_leaf(name, leaf, index // per_example, binary, limits) for index, leaf in enumerate(leaves)]
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    kind = spec.dtype.as_numpy_dtype
    for index, leaf in enumerate(leaves):
        _check_number(name, leaf, index // per_example, spec.dtype)
    try:
        return np.array(leaves, dtype=kind).reshape(shape)
    except (OverflowError, ValueError) as error:
        raise BadRequest(f"input '{name}': {error}") from None


def _string_leaf(name, leaf, example, binary, limits):
    where = f"input '{name}', example {example}"
    if _is_b64(leaf) and isinstance(leaf["b64"], str):
        try:
            data = base64.b64decode(leaf["b64"].replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"{where}: 'b64' is not valid base64") from None
        if not binary:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"{where}: the text is not valid UTF-8") from None
    elif isinstance(leaf, str):
        if binary:
            raise BadRequest(f'{where}: binary input: send it as {{"b64": "<base64 of the bytes>"}}')
        try:
            data = leaf.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(f"{where}: the text is not valid Unicode (unpaired surrogate)") from None
    else:
        raise BadRequest(f'{where}: expected a string or {{"b64": ...}} (DT_STRING), got {_json_type(leaf)}')
    if binary and not data:  # an empty text is a valid input (an empty prompt, a text with no words); no bytes is no image
        raise BadRequest(f"{where}: empty bytes: send the file's contents")
    if len(data) > limits.max_string_bytes:
        raise BadRequest(
            f"{where}: {len(data)} bytes long; the limit is {limits.max_string_bytes} (--max-string-bytes)"
        )
    if binary:
        size = image_header.read_image_size(data)
        if size is not None and size.pixels > limits.max_image_pixels:
            raise BadRequest(
                f"{where}: {size} = {size.pixels} pixels; the limit is {limits.max_image_pixels} "
                "(--max-image-pixels): send a smaller image"
            )
    return data


def _check_number(name, leaf, example, dtype):
    where = f"input '{name}', example {example}"
    if dtype == tf.bool:
        if not isinstance(leaf, bool):
            raise BadRequest(f"{where}: expected true or false (DT_BOOL), got {_json_type(leaf)}")
        return
    if isinstance(leaf, bool) or not isinstance(leaf, (int, float)):
        raise BadRequest(f"{where}: expected a number ({dtype_name(dtype)}), got {_json_type(leaf)}")
    if dtype.is_integer:
        if not isinstance(leaf, int):
            raise BadRequest(f"{where}: expected an integer ({dtype_name(dtype)}), got {leaf}")
        if not dtype.min <= leaf <= dtype.max:
            raise BadRequest(f"{where}: {leaf} is out of range for {dtype_name(dtype)}")


# === Responses ===


def encode_response(outputs, rows, row_format):
    """Turns output arrays by name into the response body for the request's format."""
    converted = {name: _to_json(name, array) for name, array in outputs.items()}
    if not row_format:
        return {"outputs": next(iter(converted.values())) if len(converted) == 1 else converted}
    for name, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != rows:
            raise BadRequest(f"output '{name}' has no batch dimension; send the request in columnar format ('inputs')")
    if len(converted) == 1:
        return {"predictions": next(iter(converted.values()))}
    return {"predictions": [{name: value[index] for name, value in converted.items()} for index in range(rows)]}


def _to_json(name, array):
    if array.dtype != object:
        return array.tolist()
    binary = name.endswith("_bytes")

    def convert(value):
        if isinstance(value, list):
            return [convert(item) for item in value]
        if not binary:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                pass
        return {"b64": base64.b64encode(value).decode("ascii")}

    return convert(array.tolist())
