"""Build of pyframe's C extension, pyframe._C, and of its CUDA backend.

Every C file under csrc/ is compiled into the one extension, except those of
csrc/cuda/ (the CUDA backend), of which only the plain-C caching allocator's
bookkeeping is compiled in too, for its host tests.  OpenBLAS comes from the
scipy-openblas32 wheel: its headers at build time, its library at run time
(``import pyframe`` imports scipy_openblas32 first, which loads the library
into the process; an rpath to the wheel's lib folder is kept as a fallback
for a regular install).

The CUDA backend, csrc/cuda/*.cu and *.c, is built by nvcc into its own plain
shared library, pyframe/libpyframe_cuda.so (no Python symbols), for sm_80 and
sm_90 plus PTX, with the CUDA runtime linked statically.  pyframe._C never
links it: it dlopen()s the library on first use (csrc/cuda_backend.c), so
pyframe imports and runs on machines without a GPU, driver or CUDA runtime.
The build_ext below builds it alongside pyframe._C (`-j 2` builds the two at
once), for `pip install .`, `pip install -e .` and `build_ext --inplace`.

Switches (environment variables):
  PYFRAME_CUDA=1 / 0                   require / skip the CUDA backend (unset:
                                       built when nvcc is found, on PATH, in
                                       $CUDA_HOME/bin or /usr/local/cuda/bin)
  PYFRAME_SANITIZE=address,undefined   build pyframe._C with those sanitizers (see README)
  PYFRAME_WERROR=1                     turn warnings into errors, nvcc's included (CI does)
  PYFRAME_DEBUG=1                      -O0 -g
"""
import glob
import logging
import os
import re
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext
from setuptools.errors import CompileError

CUDA_LIBRARY = "pyframe.libpyframe_cuda"
# sm_80 (A100) and sm_90 (H100) machine code, and PTX for newer GPUs to compile at load time
CUDA_ARCH_FLAGS = ["-gencode", "arch=compute_80,code=sm_80",
                   "-gencode", "arch=compute_90,code=sm_90",
                   "-gencode", "arch=compute_90,code=compute_90"]
# Per-file nvcc flags.  optim.cu runs the cpu's optimizer loops (csrc/kernels/optim_loops.h)
# on the device: with no a * b + c fused into an fma it rounds as the cpu does, bit for bit.
CUDA_FILE_FLAGS = {"optim.cu": ["-fmad=false"]}


def _version():
    with open(os.path.join(os.path.dirname(__file__), "pyproject.toml")) as f:
        return re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M).group(1)


def _extension():
    import numpy
    import scipy_openblas32 as sob

    sources = sorted(s for s in glob.glob("csrc/**/*.c", recursive=True)
                     if not s.startswith(os.path.join("csrc", "cuda", "")))
    sources.append(os.path.join("csrc", "cuda", "caching_allocator.c"))
    # -fno-math-errno / -fno-trapping-math: pyframe never reads errno nor traps on
    # floating-point exceptions, and without them GCC keeps sqrt, floor, ceil and
    # trunc loops scalar.  (No -ffast-math: NaN, inf and signed zeros must stay exact.)
    compile_args = ["-std=gnu11", "-fopenmp", "-Wall", "-Wextra", "-fvisibility=hidden",
                    "-fno-strict-overflow", "-fno-math-errno", "-fno-trapping-math"]
    link_args = ["-fopenmp", "-Wl,-rpath,$ORIGIN/../scipy_openblas32/lib"]
    macros = [("PYFRAME_VERSION", '"%s"' % _version())]
    if os.environ.get("PYFRAME_DEBUG") == "1":
        compile_args += ["-O0", "-g"]
    else:
        compile_args += ["-O3"]
    sanitize = os.environ.get("PYFRAME_SANITIZE", "").strip()
    if sanitize:
        flags = ["-fsanitize=" + sanitize, "-fno-omit-frame-pointer", "-g"]
        compile_args += flags
        link_args += flags
        macros.append(("PYFRAME_SANITIZE", "1"))
    if os.environ.get("PYFRAME_WERROR") == "1":
        compile_args.append("-Werror")
    return Extension(
        "pyframe._C",
        sources=sources,
        include_dirs=["csrc", numpy.get_include(), sob.get_include_dir()],
        library_dirs=[sob.get_lib_dir()],
        libraries=[sob.get_library()],
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        depends=glob.glob("csrc/**/*.h", recursive=True),
    )


def _find_nvcc():
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if root and os.access(os.path.join(root, "bin", "nvcc"), os.X_OK):
            return os.path.join(root, "bin", "nvcc")
    return None


class CudaLibrary(Extension):
    """A plain shared library that nvcc builds from .cu and .c sources.

    It is an Extension only so that setuptools treats it as a build output
    (copied in place, packed into wheels, mapped by editable installs).
    `nvcc` is None where none was found; `optional` (set when PYFRAME_CUDA is
    unset, and PYFRAME_WERROR is not 1) turns a failed build into a warning,
    the backend then reporting itself as not built.
    """

    def __init__(self, name, sources, nvcc, required, **kw):
        super().__init__(name, sources, **kw)
        self.nvcc = nvcc
        self.required = required
        # CI (PYFRAME_WERROR=1) fails on a broken kernel; a user's install goes on without it
        self.optional = not required and os.environ.get("PYFRAME_WERROR") != "1"


def _cuda_library():
    mode = os.environ.get("PYFRAME_CUDA", "").strip()
    if mode not in ("", "0", "1"):
        raise SystemExit("PYFRAME_CUDA must be 1 (require the CUDA backend), 0 (skip it) or "
                         "unset (build it when nvcc is found); got %r" % mode)
    nvcc = _find_nvcc() if mode != "0" else None
    if mode == "0" or (mode == "" and nvcc is None):
        return []
    sources = sorted(glob.glob("csrc/cuda/*.cu")) + sorted(glob.glob("csrc/cuda/*.c"))
    return [CudaLibrary(CUDA_LIBRARY, sources, nvcc=nvcc, required=mode == "1",
                        depends=sorted(glob.glob("csrc/cuda/*.h") + glob.glob("csrc/cuda/*.cuh")) + ["csrc/ops.def"])]


class build_ext(_build_ext):
    """setuptools' build_ext, plus nvcc for CudaLibrary targets."""

    def get_ext_filename(self, fullname):
        if isinstance(self.ext_map.get(fullname), CudaLibrary):
            # no Python ABI tag: the library holds no Python code
            return os.path.join(*fullname.split(".")) + ".so"
        return super().get_ext_filename(fullname)

    def run(self):
        if not any(isinstance(e, CudaLibrary) for e in self.extensions):
            reason = ("PYFRAME_CUDA=0" if os.environ.get("PYFRAME_CUDA", "").strip() == "0"
                      else "nvcc not found on PATH, in $CUDA_HOME/bin or /usr/local/cuda/bin")
            self.announce("pyframe: building without the CUDA backend (%s)" % reason,
                          level=logging.INFO)
        super().run()

    def build_extension(self, ext):
        if isinstance(ext, CudaLibrary):
            self._build_cuda(ext)
        else:
            super().build_extension(ext)

    def _build_cuda(self, ext):
        from setuptools.modified import newer_group

        if ext.nvcc is None:
            raise CompileError("PYFRAME_CUDA=1 asks for the CUDA backend, but nvcc was not found "
                               "on PATH, in $CUDA_HOME/bin or /usr/local/cuda/bin; install the "
                               "CUDA toolkit, or unset PYFRAME_CUDA to build without it")
        target = self.get_ext_fullpath(ext.name)
        if not (self.force or newer_group(ext.sources + ext.depends, target, "newer")):
            self.announce("skipping %s (up to date)" % target, level=logging.INFO)
            return
        tmp = os.path.join(self.build_temp, "cuda")
        os.makedirs(tmp, exist_ok=True)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        werror = os.environ.get("PYFRAME_WERROR") == "1"
        opt = ["-O0", "-g"] if os.environ.get("PYFRAME_DEBUG") == "1" else ["-O3"]
        # -ffp-contract=off: the host self-tests of the kernels (random.cu, optim.cu) round
        # as the cpu backend's files that share their code (random.c, optim_kernels.c)
        host = ["-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra", "-ffp-contract=off"]
        host += ["-Werror"] if werror else []
        nv_werror = ["-Werror", "all-warnings"] if werror else []
        objects = []
        for src in ext.sources:
            obj = os.path.join(tmp, os.path.basename(src) + ".o")
            if src.endswith(".cu"):
                cmd = [ext.nvcc, "-c", src, "-o", obj, "-std=c++17", *opt, *CUDA_ARCH_FLAGS,
                       *CUDA_FILE_FLAGS.get(os.path.basename(src), []),
                       "-Xcompiler", ",".join(host), *nv_werror]
            else:
                # plain C, compiled by nvcc's host compiler
                cmd = [ext.nvcc, "-c", src, "-o", obj, *opt,
                       "-Xcompiler", ",".join(["-std=gnu11"] + host), *nv_werror]
            self.spawn(cmd)
            objects.append(obj)
        # Static cudart: the library needs only the driver (libcuda.so.1, which cudart opens
        # itself) at run time.  --exclude-libs hides cudart's symbols, so neither it nor
        # another libcudart in the process (PyTorch's, say) binds to the other's.
        # -z defs: an undefined symbol fails here rather than at dlopen.
        self.spawn([ext.nvcc, "-shared", "-o", target, *objects, "-cudart", "static",
                    "-Xlinker", "--exclude-libs,ALL", "-Xlinker", "-z,defs"])


setup(ext_modules=[_extension()] + _cuda_library(), cmdclass={"build_ext": build_ext})
