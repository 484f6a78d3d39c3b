"""ggml's CPU matrix-vector products, the peer of lrq's kernels in bench/matvec.py --peers.

llama.cpp multiplies GGUF-quantized weights with ggml's CPU backend: the
input vector is quantized to int8 blocks (Q8_K for the k-quants, Q8_0 for
Q8_0) and dotted with each quantized row by the kernels of the host's ISA.
This module builds that library from the C sources the ``ggml-python``
sdist on PyPI vendors (``pip download``, then CMake with the host's native
ISA, as llama.cpp's own builds do), caches the build, and runs ggml's own
``ggml_mul_mat`` graph on its own thread pool through ctypes -- the code
path a llama.cpp user gets, input quantization included.

    peer = GgmlMatvec(A, "Q4_K", threads=2)     # quantizes A's rows with ggml
    y = peer(x)                                 # y ~= A @ x, float32
    Ahat = quantize_dequantize(A, "IQ3_S")      # ggml's quantizer, then its to_float

bench/rate_distortion.py --peers uses the second form for its error table.

Nothing here runs in the test command: building takes minutes and needs
CMake (``pip install cmake ninja`` gives both).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

SDIST = "ggml-python"
# ggml's enum ggml_type (include/ggml.h): the quantized types with a C
# quantizer in ggml_quantize_chunk.
TYPES = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13,
         "Q6_K": 14, "IQ2_XXS": 16, "IQ2_XS": 17, "IQ3_XXS": 18, "IQ1_S": 19, "IQ4_NL": 20, "IQ3_S": 21, "IQ2_S": 22,
         "IQ4_XS": 23, "IQ1_M": 29, "TQ1_0": 34, "TQ2_0": 35, "MXFP4": 39, "NVFP4": 40, "Q1_0": 41}
_F32 = 0


def cache_folder() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lrq-bench", "ggml")


def _run(cmd, cwd=None) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def build(folder: str | None = None, log=print) -> str:
    """The folder holding ggml's shared libraries, built once and cached."""
    folder = folder or cache_folder()
    libs = os.path.join(folder, "build", "src")
    if _located(libs, "libggml-cpu.so"):
        return libs
    for tool in ("cmake", "ninja"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"building ggml needs {tool} on PATH: pip install cmake ninja")
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        log(f"ggml peer: downloading the {SDIST} sdist (its vendored ggml sources) ...")
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", scratch, SDIST])
        archive = next(os.path.join(scratch, f) for f in os.listdir(scratch) if f.endswith(".tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")
        top = next(os.path.join(scratch, d) for d in os.listdir(scratch) if os.path.isdir(os.path.join(scratch, d)))
        source = os.path.join(folder, "ggml")
        shutil.rmtree(source, ignore_errors=True)
        shutil.move(os.path.join(top, "vendor", "ggml"), source)
    log("ggml peer: building ggml (CMake, native ISA; a few minutes) ...")
    out = os.path.join(folder, "build")
    _run(["cmake", "-S", source, "-B", out, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=ON",
          "-DGGML_NATIVE=ON", "-DGGML_OPENMP=OFF", "-DGGML_BUILD_TESTS=OFF", "-DGGML_BUILD_EXAMPLES=OFF"])
    _run(["ninja", "-C", out, "ggml"])
    return libs


def _located(libs: str, name: str) -> str | None:
    for root, _, files in os.walk(libs):
        if name in files:
            return os.path.join(root, name)
    return None


def _find(libs: str, name: str) -> str:
    path = _located(libs, name)
    if path is None:
        raise RuntimeError(f"{name} is not in the ggml build at {libs}")
    return path


class _InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", ctypes.c_void_p), ("no_alloc", ctypes.c_bool)]


class _ThreadpoolParams(ctypes.Structure):
    _fields_ = [("cpumask", ctypes.c_bool * 512), ("n_threads", ctypes.c_int), ("prio", ctypes.c_int),
                ("poll", ctypes.c_uint32), ("strict_cpu", ctypes.c_bool), ("paused", ctypes.c_bool)]


class _Cplan(ctypes.Structure):
    _fields_ = [("work_size", ctypes.c_size_t), ("work_data", ctypes.c_void_p), ("n_threads", ctypes.c_int),
                ("threadpool", ctypes.c_void_p), ("abort_callback", ctypes.c_void_p),
                ("abort_callback_data", ctypes.c_void_p), ("use_ref", ctypes.c_bool)]


class _TypeTraits(ctypes.Structure):
    """struct ggml_type_traits (include/ggml.h)."""

    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64), ("blck_size_interleave", ctypes.c_int64),
                ("type_size", ctypes.c_size_t), ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                ("from_float_ref", ctypes.c_void_p)]


# ggml_to_float_t: (const void * x, float * y, int64_t k), k values from whole blocks.
_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


class _Library:
    def __init__(self, libs: str):
        # ggml-base first, RTLD_GLOBAL: ggml-cpu and ggml resolve against it.
        self.base = ctypes.CDLL(_find(libs, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
        self.cpu = ctypes.CDLL(_find(libs, "libggml-cpu.so"), mode=ctypes.RTLD_GLOBAL)
        b, c, p = self.base, self.cpu, ctypes.c_void_p
        b.ggml_init.argtypes, b.ggml_init.restype = [_InitParams], p
        b.ggml_free.argtypes = [p]
        b.ggml_new_tensor_2d.argtypes, b.ggml_new_tensor_2d.restype = [p, ctypes.c_int, ctypes.c_int64,
                                                                       ctypes.c_int64], p
        b.ggml_get_data.argtypes, b.ggml_get_data.restype = [p], p
        b.ggml_nbytes.argtypes, b.ggml_nbytes.restype = [p], ctypes.c_size_t
        b.ggml_mul_mat.argtypes, b.ggml_mul_mat.restype = [p, p, p], p
        b.ggml_new_graph.argtypes, b.ggml_new_graph.restype = [p], p
        b.ggml_build_forward_expand.argtypes = [p, p]
        b.ggml_row_size.argtypes, b.ggml_row_size.restype = [ctypes.c_int, ctypes.c_int64], ctypes.c_size_t
        b.ggml_quantize_chunk.argtypes = [ctypes.c_int, p, p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, p]
        b.ggml_quantize_chunk.restype = ctypes.c_size_t
        b.ggml_quantize_init.argtypes = [ctypes.c_int]
        b.ggml_quantize_requires_imatrix.argtypes, b.ggml_quantize_requires_imatrix.restype = [ctypes.c_int], ctypes.c_bool
        b.ggml_get_type_traits.argtypes = [ctypes.c_int]
        b.ggml_get_type_traits.restype = ctypes.POINTER(_TypeTraits)
        b.ggml_threadpool_params_init.argtypes = [ctypes.POINTER(_ThreadpoolParams), ctypes.c_int]
        c.ggml_cpu_init.argtypes = []
        c.ggml_threadpool_new.argtypes, c.ggml_threadpool_new.restype = [ctypes.POINTER(_ThreadpoolParams)], p
        c.ggml_threadpool_free.argtypes = [p]
        c.ggml_graph_plan.argtypes, c.ggml_graph_plan.restype = [p, ctypes.c_int, p], _Cplan
        c.ggml_graph_compute.argtypes, c.ggml_graph_compute.restype = [p, ctypes.POINTER(_Cplan)], ctypes.c_int
        c.ggml_cpu_init()


_LIBRARY: _Library | None = None


def library(log=print) -> _Library:
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = _Library(build(log=log))
    return _LIBRARY


def _type_id(kind: str) -> int:
    if kind not in TYPES:
        raise ValueError(f"ggml type {kind!r}: one of {', '.join(TYPES)}")
    return TYPES[kind]


def block_length(kind: str) -> int:
    """Entries per block of ``kind``: a row's length must be a multiple of it."""
    return int(library().base.ggml_get_type_traits(_type_id(kind)).contents.blck_size)


def bits_per_weight(kind: str) -> float:
    """Bits per entry of ``kind``, its scales (and minimums) included."""
    traits = library().base.ggml_get_type_traits(_type_id(kind)).contents
    return 8.0 * traits.type_size / traits.blck_size


def requires_imatrix(kind: str) -> bool:
    """ggml_quantize_requires_imatrix: ggml refuses to quantize ``kind`` without an importance matrix."""
    return bool(library().base.ggml_quantize_requires_imatrix(_type_id(kind)))


def _quantize_rows(lib: _Library, type_id: int, A: np.ndarray, dst: int) -> int:
    """ggml_quantize_chunk of the float32 C-contiguous ``A`` into ``dst``; the bytes written.

    Types that require an importance matrix get a uniform one (every column
    weighted 1): llama.cpp's users pass one measured on sample text, which
    this bench has no model run to measure.
    """
    m, n = A.shape
    uniform = np.ones(n, np.float32) if lib.base.ggml_quantize_requires_imatrix(type_id) else None
    return lib.base.ggml_quantize_chunk(type_id, A.ctypes.data, dst, 0, m, n,
                                        None if uniform is None else uniform.ctypes.data)


def quantize_dequantize(A: np.ndarray, kind: str) -> np.ndarray:
    """``A`` quantized along its rows by ggml's C quantizer for ``kind``, then dequantized by its to_float.

    The row length must be a multiple of ``block_length(kind)``.  Types for
    which ``requires_imatrix(kind)`` holds are quantized under a uniform
    importance matrix (all ones).
    """
    lib = library()
    type_id = _type_id(kind)
    A = np.ascontiguousarray(A, dtype=np.float32)
    m, n = A.shape
    traits = lib.base.ggml_get_type_traits(type_id).contents
    if n % traits.blck_size:
        raise ValueError(f"ggml {kind}: rows of {n} entries are not whole blocks of {traits.blck_size}")
    packed = np.zeros(m * lib.base.ggml_row_size(type_id, n), np.uint8)
    written = _quantize_rows(lib, type_id, A, packed.ctypes.data)
    if written != packed.size:
        raise RuntimeError(f"ggml {kind}: ggml_quantize_chunk wrote {written} bytes, expected {packed.size}")
    out = np.empty((m, n), np.float32)
    _TO_FLOAT(traits.to_float)(packed.ctypes.data, out.ctypes.data, m * n)
    return out


class GgmlMatvec:
    """``y = W x`` by ggml, W = ``A`` quantized to ``kind`` by ggml's quantizer.

    The quantized weights, the input and output tensors and the graph live
    in one ggml context, planned once on a persistent thread pool of
    ``threads`` threads (llama.cpp's set-up, its default polling); each call
    copies x in, runs the graph (quantizing x, then the dot products) and
    returns y.
    """

    def __init__(self, A: np.ndarray, kind: str, threads: int = 2):
        type_id = _type_id(kind)
        lib = self.lib = library()
        A = np.ascontiguousarray(A, dtype=np.float32)
        m, n = A.shape
        self.kind, self.threads, self.shape = kind, threads, (m, n)
        weight_bytes = m * lib.base.ggml_row_size(type_id, n)
        # weights, x, y, graph and tensor headers (the work buffer is ours).
        size = weight_bytes + 8 * (m + n) + (16 << 20)
        self.ctx = lib.base.ggml_init(_InitParams(size, None, False))
        if not self.ctx:
            raise MemoryError("ggml_init failed")
        lib.base.ggml_quantize_init(type_id)
        self.weights = lib.base.ggml_new_tensor_2d(self.ctx, type_id, n, m)
        written = _quantize_rows(lib, type_id, A, lib.base.ggml_get_data(self.weights))
        assert written == weight_bytes, (written, weight_bytes)
        self.nbytes = weight_bytes
        self.x = lib.base.ggml_new_tensor_2d(self.ctx, _F32, n, 1)
        self.y = lib.base.ggml_mul_mat(self.ctx, self.weights, self.x)
        self.graph = lib.base.ggml_new_graph(self.ctx)
        lib.base.ggml_build_forward_expand(self.graph, self.y)
        params = _ThreadpoolParams()
        lib.base.ggml_threadpool_params_init(ctypes.byref(params), threads)
        self.pool = lib.cpu.ggml_threadpool_new(ctypes.byref(params))
        self.plan = lib.cpu.ggml_graph_plan(self.graph, threads, self.pool)
        self._work = np.zeros(max(self.plan.work_size, 1), np.uint8)
        self.plan.work_data = self._work.ctypes.data
        self._x = np.ctypeslib.as_array((ctypes.c_float * n).from_address(lib.base.ggml_get_data(self.x)))
        self._y = np.ctypeslib.as_array((ctypes.c_float * m).from_address(lib.base.ggml_get_data(self.y)))

    @property
    def bits_per_entry(self) -> float:
        return 8.0 * self.nbytes / (self.shape[0] * self.shape[1])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self._x[:] = x
        if self.lib.cpu.ggml_graph_compute(self.graph, ctypes.byref(self.plan)) != 0:
            raise RuntimeError("ggml_graph_compute failed")
        return self._y.copy()

    def close(self) -> None:
        if getattr(self, "pool", None):
            self.lib.cpu.ggml_threadpool_free(self.pool)
            self.pool = None
        if getattr(self, "ctx", None):
            self.lib.base.ggml_free(self.ctx)
            self.ctx = None

    def __del__(self):
        self.close()
