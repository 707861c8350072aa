"""`python -m loramem.kernels`: build the CPU kernels now (`make setup` runs it), or say why not."""

import sys
import time

from loramem.kernels import few_rows

if not few_rows.enabled():
    print("LORAMEM_KERNELS=0: kernels disabled, torch ops serve")
    sys.exit(0)
tick = time.perf_counter()
if few_rows.kernel(build=True) is None:
    print(f"few_rows kernel not built ({few_rows.build_error()}); decoding uses torch ops")
else:
    print(f"few_rows kernel ready in {few_rows.build_dir()} ({time.perf_counter() - tick:.0f} s)")
