"""fdatasync latency after each pwrite of a record, into a 64 MiB file that is fallocate()d,
written with zeros first, grown by each write, or fallocate()d with 1 MiB written with zeros
ahead of the data as a durable store does (BENCHMARKS.md, durable appends).
Usage: PROBE_DIR=/path/on/the/disk python3 fsync_probe.py [RECORD_BYTES ...]   (default 300)"""
import os, sys, time

def run(mode, recsize, n=300, ahead=1 << 20):
    path = os.path.join(os.environ.get("PROBE_DIR", "."), f"probe-{mode}.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    size = 64 << 20
    if mode in ("fallocate", "ahead"):
        os.posix_fallocate(fd, 0, size)
    elif mode == "zeroed":
        buf = b"\0" * (1 << 20)
        for i in range(size >> 20):
            os.pwrite(fd, buf, i << 20)
    os.fsync(fd)
    rec = os.urandom(recsize)
    zeros = b"\0" * ahead
    t = []
    off = 0
    zeroed = 0
    started = time.perf_counter()
    for _ in range(n):
        os.pwrite(fd, rec, off)
        off += len(rec)
        if mode == "ahead" and off >= zeroed:
            os.pwrite(fd, zeros, off)
            zeroed = off + ahead
        a = time.perf_counter()
        os.fdatasync(fd)
        t.append(time.perf_counter() - a)
    per_append = (time.perf_counter() - started) / n
    os.close(fd)
    os.unlink(path)
    t.sort()
    return (f"{mode:9} {recsize:6} B: fdatasync median {t[len(t)//2]*1e6:.0f} us, "
            f"p10 {t[len(t)//10]*1e6:.0f}, p90 {t[int(len(t)*.9)]*1e6:.0f}, max {t[-1]*1e6:.0f}; "
            f"{per_append*1e6:.0f} us per append")

for size in [int(a) for a in sys.argv[1:]] or [300]:
    for m in ["fallocate", "zeroed", "ahead", "append"]:
        print(run(m, size))
