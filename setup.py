"""Build of pyframe's C extension, pyframe._C.

Every C file under csrc/ is compiled into the one extension.  OpenBLAS comes
from the scipy-openblas32 wheel: its headers at build time, its library at run
time (``import pyframe`` imports scipy_openblas32 first, which loads the
library into the process; an rpath to the wheel's lib folder is kept as a
fallback for a regular install).

Switches (environment variables):
  PYFRAME_SANITIZE=address,undefined   build with those sanitizers (see README)
  PYFRAME_WERROR=1                     turn warnings into errors (CI does)
  PYFRAME_DEBUG=1                      -O0 -g
"""
import glob
import os
import re

from setuptools import Extension, setup


def _version():
    with open(os.path.join(os.path.dirname(__file__), "pyproject.toml")) as f:
        return re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.M).group(1)


def _extension():
    import numpy
    import scipy_openblas32 as sob

    sources = sorted(glob.glob("csrc/**/*.c", recursive=True))
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


setup(ext_modules=[_extension()])
