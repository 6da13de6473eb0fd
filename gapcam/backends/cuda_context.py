"""The CUDA side of TensorRT engines: the device's primary context, entered from any thread, and
what the running GPU is (for the plan compatibility check).

pycuda drives the device through its *primary* context, pushed and popped around every call: a
ROS 2 executor calls ``infer`` from worker threads that never created a context, and
``pycuda.autoinit`` would bind one to the importing thread only. One lock serialises callers,
since an execution context, its stream and its page-locked buffers are shared. ``pycuda`` is
imported when a context is made, so this module imports on any machine.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from gapcam.backends.plan_metadata import RuntimeInfo, read_l4t_release
from gapcam.errors import GapcamError


def import_pycuda():
    """``pycuda.driver``, or a one-line :class:`GapcamError` saying how to install it."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise GapcamError(
            f"pycuda cannot be imported ({exc}); install it on the Jetson with "
            "`pip install pycuda` (needs the CUDA toolkit headers, e.g. /usr/local/cuda)"
        ) from exc
    return cuda


class PrimaryContext:
    """The primary CUDA context of one device, entered around every GPU call from any thread."""

    def __init__(self, device_index: int = 0) -> None:
        cuda = import_pycuda()
        try:
            cuda.init()
            if device_index >= cuda.Device.count():
                raise GapcamError(
                    f"CUDA device {device_index} does not exist ({cuda.Device.count()} found)"
                )
            self.device = cuda.Device(device_index)
            self.cuda_context = self.device.retain_primary_context()
        except cuda.Error as exc:
            raise GapcamError(f"no usable CUDA GPU ({exc}); TensorRT engines need one") from exc
        self._cuda = cuda
        self._lock = threading.RLock()

    @property
    def cuda(self):
        """The ``pycuda.driver`` module this context was made with."""
        return self._cuda

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Make the context current on this thread (and hold the lock) for the block."""
        with self._lock:
            self.cuda_context.push()
            try:
                yield
            finally:
                self._cuda.Context.pop()

    def release(self) -> None:
        with self._lock:
            self.cuda_context.detach()


def query_runtime_info(ctx: PrimaryContext, tensorrt_version: str) -> RuntimeInfo:
    """GPU name, compute capability, SM count, CUDA driver and L4T of this host, with the
    TensorRT version the caller imported."""
    cuda = ctx.cuda
    dev = ctx.device
    major, minor = dev.compute_capability()
    driver = cuda.get_driver_version()  # e.g. 12060
    return RuntimeInfo(
        tensorrt_version=str(tensorrt_version),
        gpu_name=str(dev.name()),
        compute_capability=f"{major}.{minor}",
        multiprocessors=int(dev.get_attribute(cuda.device_attribute.MULTIPROCESSOR_COUNT)),
        total_memory_mb=int(dev.total_memory()) // (1 << 20),
        cuda_driver=f"{driver // 1000}.{(driver % 1000) // 10}",
        l4t=read_l4t_release(),
    )
