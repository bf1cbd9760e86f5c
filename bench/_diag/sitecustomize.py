"""Optional server diagnostics for bench runs (`--server-diag`): loaded into Daphne via PYTHONPATH.

Never imported by the office itself. Writes to $BENCH_DIAG_DIR:
  gc.log      one line per gen-2 (and any >20 ms) garbage collection: wall time, generation, ms
  stacks.txt  a poor man's sampling profiler of all threads (every 5 ms), folded stacks, counted from
              the last time the bench created $BENCH_DIAG_DIR/reset (start of its measured window)
Experiments (off unless set): BENCH_DIAG_GC_FREEZE_AFTER=SECONDS calls gc.freeze() that long after
start (what an app would do once imports are done); BENCH_DIAG_GC_THRESHOLD=a,b,c calls
gc.set_threshold(a, b, c).
"""

import os

_dir = os.environ.get("BENCH_DIAG_DIR")
if _dir:
    import collections
    import gc
    import sys
    import threading
    import time

    _gc_log = open(os.path.join(_dir, "gc.log"), "a", buffering=1)
    _gc_start = [0.0]

    def _gc_cb(phase, info):
        if phase == "start":
            _gc_start[0] = time.perf_counter()
        else:
            ms = (time.perf_counter() - _gc_start[0]) * 1000
            if info.get("generation") == 2 or ms > 20:
                _gc_log.write(f"{time.time():.3f} gen={info.get('generation')} ms={ms:.1f} "
                              f"collected={info.get('collected')}\n")

    gc.callbacks.append(_gc_cb)
    if os.environ.get("BENCH_DIAG_GC_THRESHOLD"):
        gc.set_threshold(*(int(v) for v in os.environ["BENCH_DIAG_GC_THRESHOLD"].split(",")))
    _freeze_after = float(os.environ.get("BENCH_DIAG_GC_FREEZE_AFTER", "0") or 0)

    _main_id = threading.main_thread().ident
    _counts = collections.Counter()
    _interval = float(os.environ.get("BENCH_DIAG_INTERVAL", "0.005"))

    def _sampler():
        started = last_dump = last_count = time.monotonic()
        frozen = False
        while True:
            if _freeze_after and not frozen and time.monotonic() - started >= _freeze_after:
                gc.collect()
                gc.freeze()
                frozen = True
                _gc_log.write(f"{time.time():.3f} froze {gc.get_freeze_count()} objects\n")
            if time.monotonic() - last_count > 5:
                last_count = time.monotonic()
                objs = gc.get_objects()
                _gc_log.write(f"{time.time():.3f} tracked objects {len(objs)}, "
                              f"frozen {gc.get_freeze_count()}, threshold {gc.get_threshold()}\n")
                del objs
            time.sleep(_interval)
            marker = os.path.join(_dir, "reset")
            if os.path.exists(marker):  # the bench starts its measured window: forget start-up samples
                os.unlink(marker)
                _counts.clear()
            frames = sys._current_frames()
            for tid, frame in frames.items():
                if tid == threading.get_ident():
                    continue
                parts = []
                f = frame
                while f is not None and len(parts) < 40:
                    code = f.f_code
                    parts.append(f"{os.path.basename(code.co_filename)}:{code.co_name}")
                    f = f.f_back
                name = "main" if tid == _main_id else "thread"
                _counts[name + ";" + ";".join(reversed(parts))] += 1
            if time.monotonic() - last_dump > 2:
                last_dump = time.monotonic()
                with open(os.path.join(_dir, "stacks.txt"), "w") as out:
                    for stack, n in _counts.most_common():
                        out.write(f"{n} {stack}\n")

    threading.Thread(target=_sampler, name="bench-diag-sampler", daemon=True).start()
