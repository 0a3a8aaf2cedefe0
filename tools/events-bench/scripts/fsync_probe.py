"""fdatasync latency after a 300-byte pwrite, 400 times, into a 64 MiB file that is
fallocate()d, written with zeros first, or grown by each write (BENCHMARKS.md, durable appends).
Usage: PROBE_DIR=/path/on/the/disk python3 fsync_probe.py"""
import os, time
def run(mode, n=400):
    path=os.path.join(os.environ.get("PROBE_DIR", "."), f"probe-{mode}.bin")
    fd=os.open(path, os.O_RDWR|os.O_CREAT|os.O_TRUNC, 0o644)
    size=64<<20
    if mode=="fallocate":
        os.posix_fallocate(fd,0,size)
    elif mode=="zeroed":
        buf=b"\0"*(1<<20)
        for i in range(size>>20): os.pwrite(fd,buf,i<<20)
    os.fsync(fd)
    rec=b"x"*300
    t=[]
    off=0
    for i in range(n):
        os.pwrite(fd,rec,off); off+=len(rec)
        a=time.perf_counter(); os.fdatasync(fd); t.append(time.perf_counter()-a)
    os.close(fd); os.unlink(path)
    t.sort()
    return f"{mode}: median {t[len(t)//2]*1e6:.0f} us, p90 {t[int(len(t)*.9)]*1e6:.0f} us"
for m in ["fallocate","zeroed","append"]:
    print(run(m))
