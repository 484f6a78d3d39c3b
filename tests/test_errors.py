"""Bad input and damaged files raise the right ``lrq.LrqError`` subclass.

Every error lrq raises on purpose is an ``LrqError`` (a ``ValueError``); the
subclass tells a caller's mistake (ArgumentError) from a damaged file
(FormatError, ChecksumError), a newer file (UnsupportedError) or an I/O
failure (ResourceError).  ``pytest.raises(cls)`` lets any other exception
type through, which fails the test: that is the "never another type" check.
"""

from __future__ import annotations

import numpy as np
import msgpack
import pytest

import lrq
from _support import (
    assemble,
    edit_preamble,
    load_outcome,
    random_matrix,
    reference_outcome,
    section_entries,
    section_position,
    small_files,
    split,
    to_bytes_via_save,
)

A = random_matrix((3, 3), seed=0)


def raises(cls, fn, *args, **kwargs) -> lrq.LrqError:
    """Call fn and return the exception, which must be a ``cls`` with a message."""
    with pytest.raises(cls) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, lrq.LrqError) and isinstance(info.value, ValueError)
    assert str(info.value).strip(), "error message is empty"
    return info.value


def test_error_classes_form_one_hierarchy():
    for cls in (lrq.FormatError, lrq.ChecksumError, lrq.UnsupportedError, lrq.ArgumentError, lrq.ResourceError):
        assert issubclass(cls, lrq.LrqError) and issubclass(cls, ValueError)


# ---------------------------------------------------------------- encode arguments

BAD_INPUTS = {
    "1-D signcut": (np.ones(5), dict(scheme="signcut", width=1)),
    "1-D lplr": (np.ones(5), dict(scheme="lplr")),
    "1-D auto": (np.ones(5), {}),
    "9-D signcut": (np.ones((1,) * 9), dict(scheme="signcut", width=1)),  # 3- to 8-D: an lrq.Tensor
    "3-D lplr": (np.ones((2, 2, 2)), dict(scheme="lplr")),
    "9-D dense": (np.ones((1,) * 9), dict(scheme="dense")),
    "empty 0x5": (np.ones((0, 5)), {}),
    "empty 5x0 dense": (np.ones((5, 0)), dict(scheme="dense")),
    "NaN": (np.array([[1.0, np.nan], [0.0, 1.0]]), {}),
    "Inf": (np.array([[1.0, 2.0], [-np.inf, 1.0]], dtype=np.float32), dict(scheme="signcut", width=1)),
    "NaN dense": (np.array([np.nan]), dict(scheme="dense")),
    "int": (np.ones((2, 2), dtype=np.int32), {}),
    "int dense": (np.ones((2, 2), dtype=np.int64), dict(scheme="dense")),
    "bool": (np.ones((2, 2), dtype=bool), {}),
    "complex": (np.ones((2, 2), dtype=np.complex64), {}),
    "object": (np.array([[1.0, None]], dtype=object), {}),
    "string": ("abc", {}),
    "None": (None, {}),
    "ragged list": ([[1.0, 2.0], [3.0]], {}),
}

BAD_ARGUMENTS = {
    "unknown scheme": dict(scheme="svd"),
    "scheme not a string": dict(scheme=None),
    "unknown option": dict(scheme="signcut", rank=2),
    "misspelt option": dict(scheme="lplr", bitsl=2),
    "bits and width": dict(scheme="signcut", bits=2.0, width=3),
    "bits and rel_error": dict(bits=2.0, rel_error=0.1),
    "bits 0": dict(bits=0),
    "bits negative": dict(bits=-1.0),
    "bits NaN": dict(bits=float("nan")),
    "bits inf": dict(bits=float("inf")),
    "bits 1e9": dict(bits=1e9),
    "bits string": dict(bits="4"),
    "bits True": dict(bits=True),
    "width 0": dict(scheme="signcut", width=0),
    "width -1": dict(scheme="signcut", width=-1),
    "width 2.5": dict(scheme="signcut", width=2.5),
    "width True": dict(scheme="signcut", width=True),
    "width 2^31": dict(scheme="signcut", width=2**31),
    "width with lplr": dict(scheme="lplr", width=3),
    "width with auto": dict(width=3),
    "rel_error 0": dict(rel_error=0),
    "rel_error 1": dict(rel_error=1),
    "rel_error NaN": dict(rel_error=float("nan")),
    "rel_error negative": dict(rel_error=-0.1),
    "seed -1": dict(seed=-1),
    "seed 1.5": dict(seed=1.5),
    "seed True": dict(seed=True),
    "panel 100": dict(panel=100),
    "panel 0": dict(panel=0),
    "panel 2^21": dict(panel=2**21),
    "tile_shape (0, 5)": dict(tile_shape=(0, 5)),
    "tile_shape (-1, 5)": dict(tile_shape=(-1, 5)),
    "tile_shape 3 dims": dict(tile_shape=(1, 2, 3)),
    "tile_shape not ints": dict(tile_shape=("a", "b")),
    "lplr group 100": dict(scheme="lplr", group=100),
    "lplr group 8": dict(scheme="lplr", group=8),
    "lplr rank 0": dict(scheme="lplr", rank=0),
    "lplr rank > min(m, n)": dict(scheme="lplr", rank=4),
    "lplr bits_l 9": dict(scheme="lplr", bits_l=9),
    "lplr bits_r 0": dict(scheme="lplr", bits_r=0),
    "lplr variant": dict(scheme="lplr", variant="qr"),
    "dense storage int8": dict(scheme="dense", storage="int8"),
    "dense float16 overflow": dict(scheme="dense", storage="float16", _input=np.array([[1e6]])),
    "dense bfloat16 overflow": dict(scheme="dense", storage="bfloat16", _input=np.array([[1e39]])),
    "dense float32 overflow": dict(scheme="dense", storage="float32", _input=np.array([1e39, 1.0])),
    "name empty": dict(name=""),
    "name not a string": dict(name=7),
    "name too long": dict(name="x" * 1025),
    "progress not callable": dict(progress=3),
}


@pytest.mark.parametrize("a, kwargs", BAD_INPUTS.values(), ids=BAD_INPUTS)
def test_bad_input_array(a, kwargs):
    raises(lrq.ArgumentError, lrq.encode, a, **kwargs)


@pytest.mark.parametrize("kwargs", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS)
def test_bad_encode_argument(kwargs):
    kwargs = dict(kwargs)
    raises(lrq.ArgumentError, lrq.encode, kwargs.pop("_input", A), **kwargs)


@pytest.mark.parametrize("scheme", ["auto", "signcut", "lplr", "dense"])
def test_budget_too_small_names_the_budget(scheme):
    exc = raises(lrq.ArgumentError, lrq.encode, A, scheme, bits=0.01)
    assert "0.01" in str(exc) and "bits" in str(exc)


@pytest.mark.parametrize("options", [dict(scheme="signcut", width=2), dict(scheme="lplr", rank=1)], ids=["signcut", "lplr"])
def test_values_beyond_float32_are_refused_or_stored_validly(options):
    a = np.full((4, 4), 1e39)
    a[0, 0] = -1e39
    try:
        matrix = lrq.encode(a, **options)
    except lrq.ArgumentError:
        return
    assert np.isfinite(matrix.rel_error)
    lrq.loads(lrq.dumps(matrix))


def test_unreachable_error_goal_is_refused():
    raises(lrq.ArgumentError, lrq.encode, random_matrix((64, 48)), "lplr", rel_error=1e-4)


# ---------------------------------------------------------------- products

M = lrq.encode(random_matrix((3, 4)), "signcut", width=2)

BAD_OPERANDS = {
    "x too short": lambda: M @ np.ones(3),
    "x too long": lambda: M.matvec(np.ones(5)),
    "X wrong rows": lambda: M @ np.ones((3, 2)),
    "x 3-D": lambda: M @ np.ones((4, 1, 1)),
    "x scalar": lambda: M @ np.float64(1.0),
    "y wrong length": lambda: M.T @ np.ones(4),
    "rmatvec wrong length": lambda: M.rmatvec(np.ones(4)),
    "left operand wrong length": lambda: np.ones(4) @ M,
    "x NaN": lambda: M @ np.array([1.0, np.nan, 0.0, 0.0]),
    "x Inf": lambda: M @ np.array([1.0, np.inf, 0.0, 0.0], dtype=np.float32),
    "y NaN": lambda: M.rmatvec(np.array([np.nan, 0.0, 0.0])),
    "left operand NaN": lambda: np.array([np.nan, 0.0, 0.0]) @ M,
    "x complex": lambda: M @ np.ones(4, dtype=complex),
    "x object": lambda: M @ np.array([1, 2, 3, None], dtype=object),
    "x string": lambda: M @ np.array(["a", "b", "c", "d"]),
}


@pytest.mark.parametrize("product", BAD_OPERANDS.values(), ids=BAD_OPERANDS)
def test_bad_product_operand(product):
    raises(lrq.ArgumentError, product)


def test_products_accept_integer_and_bool_operands():
    dense = lrq.decode(M)
    np.testing.assert_allclose(M @ np.arange(4), dense @ np.arange(4), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(M.T @ np.array([True, False, True]), dense.T @ [1, 0, 1], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- bytes and files


@pytest.mark.parametrize("data", ["abc", None, 5, [1, 2], 1.5], ids=repr)
def test_loads_of_non_bytes(data):
    raises(lrq.ArgumentError, lrq.loads, data)
    raises(lrq.ArgumentError, lrq.reference.decode, data)


@pytest.mark.parametrize("value", [5, "abc", np.ones((2, 2))], ids=repr)
def test_dumps_and_decode_of_non_matrices(value):
    raises(lrq.ArgumentError, lrq.dumps, value)
    if not isinstance(value, str):
        raises(lrq.ArgumentError, lrq.decode, value)


def test_loads_of_empty_bytes():
    raises(lrq.FormatError, lrq.loads, b"")
    raises(lrq.FormatError, lrq.reference.decode, b"")


def test_loads_of_a_file_with_two_tensors():
    data = to_bytes_via_save({"a": np.ones(3, dtype=np.float32), "b": np.zeros(2)})
    exc = raises(lrq.ArgumentError, lrq.loads, data)
    assert "lrq.open" in str(exc)
    assert set(lrq.reference.decode(data)) == {"a", "b"}


def test_loads_of_a_file_with_no_tensor():
    data = to_bytes_via_save({})
    raises(lrq.ArgumentError, lrq.loads, data)
    assert lrq.reference.decode(data) == {}


def test_open_missing_path(tmp_path):
    raises(lrq.ResourceError, lrq.open, tmp_path / "missing.lrq")


def test_open_a_folder(tmp_path):
    raises(lrq.ResourceError, lrq.open, tmp_path)


@pytest.mark.parametrize("content", [b"", b"not an lrq file, just some text\n" * 4, b"\x89PNG\r\n\x1a\n" + bytes(100)],
                         ids=["empty", "text", "png"])
def test_open_a_file_that_is_not_lrq(tmp_path, content):
    path = tmp_path / "x.lrq"
    path.write_bytes(content)
    raises(lrq.FormatError, lrq.open, path)


@pytest.mark.parametrize("tensors", [
    {"a": np.array([np.nan])}, {"a": np.ones(2, dtype=complex)}, {"a": np.ones(2, dtype=object)},
    {"a": np.ones((0, 3))}, {"": np.ones(2)}, {"\udc80": np.ones(2)}, {3: np.ones(2)},
], ids=["NaN", "complex", "object", "empty", "empty name", "bad UTF-8 name", "int name"])
def test_save_refuses_what_it_cannot_store(tmp_path, tensors):
    raises(lrq.ArgumentError, lrq.save, tmp_path / "x.lrq", tensors)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_bad_metadata_and_containers(tmp_path):
    raises(lrq.ArgumentError, lrq.save, tmp_path / "x.lrq", {"a": np.ones(2)}, metadata={"k": 1})
    raises(lrq.ArgumentError, lrq.save, tmp_path / "x.lrq", [np.ones(2)])
    raises(lrq.ResourceError, lrq.save, tmp_path / "no" / "x.lrq", {"a": np.ones(2)})


# ---------------------------------------------------------------- signcut_from_factors

SIGNS = np.ones((3, 2))
BAD_FACTORS = {
    "S holds 0": (np.zeros((3, 2)), np.ones((4, 2)), [1.0, 1.0]),
    "S holds 2": (np.full((3, 2), 2.0), np.ones((4, 2)), [1.0, 1.0]),
    "T holds 0.5": (SIGNS, np.full((4, 2), 0.5), [1.0, 1.0]),
    "S complex": (SIGNS.astype(complex), np.ones((4, 2)), [1.0, 1.0]),
    "S object": (SIGNS.astype(object), np.ones((4, 2)), [1.0, 1.0]),
    "S 1-D": (np.ones(3), np.ones((4, 1)), [1.0]),
    "S no rows": (np.ones((0, 2)), np.ones((4, 2)), [1.0, 1.0]),
    "widths differ": (SIGNS, np.ones((4, 3)), [1.0, 1.0]),
    "c too short": (SIGNS, np.ones((4, 2)), [1.0]),
    "c NaN": (SIGNS, np.ones((4, 2)), [1.0, np.nan]),
    "c Inf": (SIGNS, np.ones((4, 2)), [np.inf, 1.0]),
    "c beyond float32": (SIGNS, np.ones((4, 2)), [1e300, 1.0]),
    "c strings": (SIGNS, np.ones((4, 2)), ["a", "b"]),
}


@pytest.mark.parametrize("s, t, c", BAD_FACTORS.values(), ids=BAD_FACTORS)
def test_bad_signcut_factors(s, t, c):
    raises(lrq.ArgumentError, lrq.signcut_from_factors, s, t, c)


def test_signcut_factors_bad_name_and_panel():
    raises(lrq.ArgumentError, lrq.signcut_from_factors, SIGNS, np.ones((4, 2)), [1.0, 1.0], panel=100)
    raises(lrq.ArgumentError, lrq.signcut_from_factors, SIGNS, np.ones((4, 2)), [1.0, 1.0], name="")


# ---------------------------------------------------------------- damaged files
#
# Each case names a small valid file and a function that damages it.  Raw edits
# leave every CRC as it was; edits "behind the CRC" rebuild the file with
# _support.assemble (canonical layout, fresh CRCs), so the decoder must catch
# the broken rule itself.


def raw(fn):
    return lambda data: fn(bytearray(data))


def behind_crc(edit, **assemble_options):
    """A damage function that edits (header, payloads), then re-assembles."""

    def damage(data):
        header, payloads = split(data)
        edit(header, payloads)
        return assemble(header, payloads, **assemble_options)

    return damage


def payload(kind, offset, new, *, tensor=0, tile=0, mode="set"):
    """Edit one byte range of one section payload (set bytes or OR bits in)."""

    def edit(header, payloads):
        i = section_position(header, kind, tensor, tile)
        buf = bytearray(payloads[i])
        for k, b in enumerate(new):
            buf[offset + k] = (buf[offset + k] | b) if mode == "or" else b
        payloads[i] = bytes(buf)

    return edit


def tensor_key(key, value, tensor=0):
    def edit(header, payloads):
        if value is DELETE:
            del header["tensors"][tensor][key]
        else:
            header["tensors"][tensor][key] = value

    return edit


def tile_key(key, value, tensor=0, tile=0):
    def edit(header, payloads):
        header["tensors"][tensor]["tiles"][tile][key] = value

    return edit


DELETE = object()


def flip(index):
    def fn(b):
        b[index] ^= 0x01
        return bytes(b)

    return fn


def first_section_byte(data):
    return section_entries(split(data)[0])[0][1]


def set_padding_byte(data):
    """Set a zero padding byte between the header and the first section."""
    header_end = 64 + int.from_bytes(data[32:40], "little")
    start = first_section_byte(data)
    assert start > header_end, "this file has no padding there"
    b = bytearray(data)
    b[header_end] = 1
    return bytes(b)


def bare_file(raw_header: bytes) -> bytes:
    """A file with exactly these header bytes and no sections, CRC correct."""
    empty = assemble({"tensors": []}, [])
    return edit_preamble(empty[:64] + raw_header, fix_crc=True, header_length=len(raw_header),
                         file_length=64 + len(raw_header))


def nested(depth):
    """``depth`` arrays inside each other; under a key of the top map (depth 1)
    the innermost one has depth ``depth + 1`` (scalars have no depth)."""
    value = 1
    for _ in range(depth):
        value = [value]
    return value


def single_bool_file():
    return to_bytes_via_save({"flag": np.array([True, False, True])})


F, C, U = lrq.FormatError, lrq.ChecksumError, lrq.UnsupportedError

CORRUPTIONS = {
    # preamble, CRCs unchanged (the checks before the header CRC)
    "bad magic": ("signcut", raw(lambda b: b"\x89LRX" + bytes(b[4:])), F),
    "magic of another format": ("signcut", raw(lambda b: b"PK\x03\x04" + bytes(b[4:])), F),
    "major version 2": ("signcut", lambda d: edit_preamble(d, fix_crc=False, major=2), U),
    "major version 0": ("signcut", lambda d: edit_preamble(d, fix_crc=False, major=0), U),
    "reserved field set": ("signcut", lambda d: edit_preamble(d, fix_crc=False, reserved_a=1), F),
    "reserved tail set": ("signcut", lambda d: edit_preamble(d, fix_crc=False, reserved_b=b"\x01" + bytes(11)), F),
    "required feature bit": ("signcut", lambda d: edit_preamble(d, fix_crc=False, required=1 << 7), U),
    "required feature bit 63": ("lplr", lambda d: edit_preamble(d, fix_crc=False, required=1 << 63), U),
    "header length 0": ("signcut", lambda d: edit_preamble(d, fix_crc=False, header_length=0), F),
    "header length 2^40": ("signcut", lambda d: edit_preamble(d, fix_crc=False, header_length=1 << 40), F),
    "header past the end": ("signcut", lambda d: edit_preamble(d, fix_crc=False, header_length=len(d)), F),
    "file length wrong": ("signcut", lambda d: edit_preamble(d, fix_crc=False, file_length=len(d) + 64), F),
    "header CRC wrong": ("signcut", raw(flip(48)), C),
    "minor version changed, CRC not": ("signcut", raw(flip(10)), C),
    "optional feature changed, CRC not": ("signcut", raw(flip(24)), C),
    "header byte flipped": ("signcut", raw(flip(70)), C),
    "section byte flipped": ("signcut", lambda d: flip(first_section_byte(d))(bytearray(d)), C),
    "last byte flipped": ("tiled", raw(flip(-1)), C),
    "lplr section byte flipped": ("lplr", lambda d: flip(first_section_byte(d) + 3)(bytearray(d)), C),
    "truncated by one byte": ("signcut", lambda d: d[:-1], F),
    "truncated in the header": ("signcut", lambda d: d[:80], F),
    "truncated in the preamble": ("signcut", lambda d: d[:40], F),
    "magic only": ("signcut", lambda d: d[:8], F),
    "trailing byte": ("signcut", lambda d: d + b"\x00", F),
    "trailing page": ("dense", lambda d: d + bytes(4096), F),
    "padding byte set": ("signcut", set_padding_byte, F),
    # behind the CRCs: payload values
    "NaN coefficient c": ("signcut", behind_crc(payload("c", 4, b"\x00\x00\xc0\x7f")), F),
    "infinite coefficient c": ("signcut", behind_crc(payload("c", 0, b"\x00\x00\x80\x7f")), F),
    "padding bit set in tt": ("signcut", behind_crc(payload("tt", 1, b"\x20", mode="or")), F),  # element 13 of 13
    "padding bit set in s": ("signcut", behind_crc(payload("s", 0, b"\x08", mode="or")), F),  # element 3 of 3
    "padding bit set in a tile": ("tiled", behind_crc(payload("tt", 0, b"\x20", tile=1, mode="or")), F),  # K = 5
    "NaN lplr scale_l": ("lplr", behind_crc(tile_key("scale_l", float("nan"))), F),
    "zero lplr scale_r": ("lplr", behind_crc(tile_key("scale_r", 0.0)), F),
    "negative lplr scale_r": ("lplr", behind_crc(tile_key("scale_r", -1.0)), F),
    "lplr scale given as int": ("lplr", behind_crc(tile_key("scale_l", 1)), F),
    "negative group scale": ("lplr", behind_crc(payload("l_scales", 1, b"\x80", mode="or")), F),
    "NaN group scale": ("lplr", behind_crc(payload("r_scales", 0, b"\x00\x7e")), F),
    "lplr code of 7 bits at bits_r 6": ("lplr", behind_crc(payload("r_codes", 0, b"\x40")), F),
    "lplr byte-code padding set": ("lplr", behind_crc(payload("r_codes", 25, b"\x01")), F),  # row 0, element 13
    "lplr bit-plane padding set": ("lplr", behind_crc(payload("l_codes", 0, b"\x04", mode="or")), F),  # element 2
    "lplr group not a power of two": ("lplr", behind_crc(tile_key("group", 48)), F),
    "lplr bits_l 9": ("lplr", behind_crc(tile_key("bits_l", 9)), F),
    "dense NaN value": ("dense", behind_crc(payload("values", 0, b"\x00\x7e")), F),
    "dense infinite value": ("dense_1d", behind_crc(payload("values", 4, b"\x00\x00\x80\xff")), F),
    "bool value 2": ("bool", behind_crc(payload("values", 1, b"\x02")), F),
    # behind the CRCs: layout
    "non-canonical section offset": ("signcut", behind_crc(lambda h, p: None, shift=64), F),
    "non-canonical offset in a later tile": ("tiled", behind_crc(lambda h, p: None, shift=128), F),
    "section shorter than its parameters": ("signcut", behind_crc(lambda h, p: p.__setitem__(0, p[0][:8])), F),
    "width disagrees with sections": ("signcut", behind_crc(tile_key("width", 4)), F),
    "extra section": ("signcut", behind_crc(lambda h, p: (h["tensors"][0]["tiles"][0]["sections"].append(["x", 0, 0, 0]), p.append(b""))), F),
    # behind the CRCs: header semantics
    "unknown scheme": ("signcut", behind_crc(tile_key("scheme", "svd")), F),
    "missing dtype": ("signcut", behind_crc(tensor_key("dtype", DELETE)), F),
    "unknown dtype": ("signcut", behind_crc(tensor_key("dtype", "float8")), F),
    "int tensor with signcut": ("signcut", behind_crc(tensor_key("dtype", "int32")), F),
    "shape as a string": ("signcut", behind_crc(tensor_key("shape", "7x13")), F),
    "shape with a zero": ("signcut", behind_crc(tensor_key("shape", [0, 13])), F),
    "shape of 3 dims for signcut": ("signcut", behind_crc(tensor_key("shape", [7, 13, 1])), F),
    "tile_shape beyond shape": ("signcut", behind_crc(tensor_key("tile_shape", [8, 13])), F),
    "tile count wrong": ("tiled", behind_crc(tensor_key("tile_shape", [20, 21])), F),
    "panel 100": ("signcut", behind_crc(tensor_key("panel", 100)), F),
    "negative rel_error": ("signcut", behind_crc(tensor_key("rel_error", -0.5)), F),
    "NaN rel_error": ("signcut", behind_crc(tensor_key("rel_error", float("nan"))), F),
    "empty name": ("signcut", behind_crc(tensor_key("name", "")), F),
    "duplicate tensor names": ("multi", behind_crc(tensor_key("name", "W", tensor=1)), F),
    "metadata value not a string": ("signcut", behind_crc(lambda h, p: h.__setitem__("metadata", {"k": 1})), F),
    "tensors not a list": ("signcut", lambda d: bare_file(msgpack.packb({"tensors": {"a": 1}})), F),
    "no tensors key": ("signcut", lambda d: bare_file(msgpack.packb({"metadata": {}})), F),
    "header is a list": ("signcut", lambda d: bare_file(msgpack.packb([1, 2])), F),
    "header with bin bytes": ("signcut", lambda d: bare_file(msgpack.packb({"tensors": [], "x": b"ab"})), F),
    "header with ext type": ("signcut", lambda d: bare_file(msgpack.packb({"tensors": [], "x": msgpack.ExtType(1, b"ab")})), F),
    "header with a duplicate key": ("signcut", lambda d: bare_file(b"\x82" + msgpack.packb("tensors") + b"\x90" + msgpack.packb("tensors") + b"\x90"), F),
    "header with a non-string key": ("signcut", lambda d: bare_file(msgpack.packb({"tensors": [], 1: 2})), F),
    "header nested 9 deep": ("signcut", lambda d: bare_file(msgpack.packb({"tensors": [], "x": nested(8)})), F),
    "header followed by junk": ("signcut", lambda d: bare_file(msgpack.packb({"tensors": []}) + b"\xc0"), F),
    "header cut short": ("signcut", lambda d: bare_file(msgpack.packb({"tensors": []})[:-1]), F),
    "header not msgpack": ("signcut", lambda d: bare_file(b"\xc1\xc1\xc1"), F),
}


def corrupted(case):
    name, damage, _ = CORRUPTIONS[case]
    source = single_bool_file() if name == "bool" else small_files()[name]
    return damage(source)


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_damaged_file_raises(case):
    expected = CORRUPTIONS[case][2]
    data = corrupted(case)
    assert load_outcome(data) is expected
    assert reference_outcome(data) is expected


# Files that differ from what a 1.0 writer emits but that a 1.0 reader must accept.
ACCEPTED = {
    "newer minor version": ("signcut", lambda d: edit_preamble(d, fix_crc=True, minor=7)),
    "unknown optional feature": ("lplr", lambda d: edit_preamble(d, fix_crc=True, optional=1 << 40)),
    "unknown header keys": ("signcut", behind_crc(lambda h, p: (h.__setitem__("x-acme-note", {"a": [1]}),
                                                                 h["tensors"][0].__setitem__("x-acme", 1.5)))),
    "keys in another order": ("lplr", behind_crc(lambda h, p: h["tensors"].__setitem__(0, dict(reversed(h["tensors"][0].items()))))),
    "floats encoded as float64": ("lplr", lambda d: assemble(*split(d), single_float=False)),
    "nesting exactly 8 deep": ("signcut", behind_crc(lambda h, p: h.__setitem__("x-deep", nested(7)))),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_acceptable_variation_loads(case):
    name, change = ACCEPTED[case]
    original = small_files()[name]
    data = change(original)
    assert lrq.decode(lrq.loads(data)).tobytes() == lrq.decode(lrq.loads(original)).tobytes()
    assert reference_outcome(data) == "ok"


def test_surgery_helper_reproduces_the_writer():
    # The corruption cases above are only as good as the helper that builds them.
    for name, data in small_files().items():
        assert assemble(*split(data)) == data, name
