#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz harnesses (fuzz/corpus/<harness>/):
small valid inputs of every format, made here from scratch (no data set
file is copied). Run from the repository root; the output is committed, so
this only needs running again when a format or a harness's input
convention (fuzz/fuzz_*.cpp) changes."""
import bz2, gzip, io, json, os, struct, tarfile, zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "corpus")


def put(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- MNIST IDX: first byte even = images file, odd = labels file -----------
def idx_images(n, h=28, w=28):
    return struct.pack(">IIII", 2051, n, h, w) + bytes((i * 7) % 256 for i in range(n * h * w))


def idx_labels(labels):
    return struct.pack(">II", 2049, len(labels)) + bytes(labels)


put("mnist_idx", "images3", b"\x00" + idx_images(3))
put("mnist_idx", "images3.gz", b"\x00" + gzip.compress(idx_images(3), mtime=0))
put("mnist_idx", "labels3", b"\x01" + idx_labels([1, 2, 3]))
put("mnist_idx", "labels3.bz2", b"\x01" + bz2.compress(idx_labels([1, 2, 3])))

# ---- USPS: first byte even = Hastie text, odd = libsvm -----------------------
text = "".join("%d.0000 " % lab + " ".join("%.4f" % (((k * 13 + lab) % 200) / 100 - 1) for k in range(256)) + "\n"
               for lab in (3, 7))
put("usps", "text2", b"\x00" + text.encode())
put("usps", "text2.gz", b"\x00" + gzip.compress(text.encode(), mtime=0))
svm = "4 1:-1 2:0.5 256:1\n10 17:0.25 100:-0.75\n"
put("usps", "libsvm2", b"\x01" + svm.encode())
put("usps", "libsvm2.bz2", b"\x01" + bz2.compress(svm.encode()))


# ---- SVHN .mat (MATLAB v5, uncompressed and zlib-compressed elements) --------
def pad8(b):
    return b + b"\x00" * (-len(b) % 8)


def element(tag, payload):
    return struct.pack("<II", tag, len(payload)) + pad8(payload)


def matrix(name, cls, dims, data_tag, data):
    flags = element(6, struct.pack("<II", cls, 0))
    dim = element(5, struct.pack("<%di" % len(dims), *dims))
    nm = element(1, name.encode())
    return element(14, flags + dim + nm + element(data_tag, data))


def mat_file(n, compress):
    head = b"MATLAB 5.0 MAT-file, neurn fuzz seed".ljust(116, b" ") + b"\x00" * 8 + struct.pack("<H", 0x0100) + b"IM"
    x = matrix("X", 9, [32, 32, 3, n], 2, bytes(i % 251 for i in range(32 * 32 * 3 * n)))
    y = matrix("y", 6, [n, 1], 9, struct.pack("<%dd" % n, *[(i % 10) + 1 for i in range(n)]))
    if compress:
        x, y = (struct.pack("<II", 15, len(z)) + z for z in (zlib.compress(x), zlib.compress(y)))
    return head + x + y


put("svhn_mat", "two.mat", mat_file(2, False))
put("svhn_mat", "two_zlib.mat", mat_file(2, True))


# ---- MNIST-M: first byte even = labels file, odd = the PNG of record 0 ------
def png(w, h, base):
    raw = b"".join(b"\x00" + bytes((base + (y * w + x) * 3 + c) % 256 for x in range(w) for c in range(3))
                   for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


put("mnistm", "labels", b"\x00" + b"00000000.png 5\n00000001.png 0\n")
put("mnistm", "png32", b"\x01" + png(32, 32, 10))
put("mnistm", "png28", b"\x01" + png(28, 28, 0))


# ---- tar: ustar, GNU long names, pax records, gzip ----------------------------
def tar_bytes(fmt, names, gz=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=fmt) as t:
        for i, name in enumerate(names):
            data = ("member %d\n" % i).encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


long_name = "mnist_m/" + "d" * 120 + "/00000000.png"
put("tar", "ustar.tar", tar_bytes(tarfile.USTAR_FORMAT, ["mnist_m/a.txt", "mnist_m/b/c.txt"]))
put("tar", "gnu_long.tar", tar_bytes(tarfile.GNU_FORMAT, [long_name]))
put("tar", "pax.tar", tar_bytes(tarfile.PAX_FORMAT, [long_name, "bsds500/x.jpg"]))
put("tar", "pax.tar.gz", tar_bytes(tarfile.PAX_FORMAT, [long_name], gz=True))


# ---- safetensors and checkpoints --------------------------------------------
def safetensors(tensors, meta=None):
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta is not None:
        header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


f32 = lambda *v: struct.pack("<%df" % len(v), *v)
put("safetensors", "two.safetensors",
    safetensors({"w": ("F32", [2, 2], f32(1, 2, 3, 4)), "b": ("F64", [1], struct.pack("<d", 0.5)),
                 "i": ("I64", [2], struct.pack("<2q", 3, -1))}, {"format": "pt"}))
put("safetensors", "scalar.safetensors", safetensors({"s": ("F32", [], f32(7))}))
meta = {"epoch": 2, "best_val_acc": 0.5, "run_id": "digits_convnet/mnist/seed0"}
put("checkpoint", "ckpt.safetensors",
    safetensors({"model.fc.weight": ("F32", [2, 3], f32(*range(6))), "model.fc.bias": ("F32", [2], f32(0, 1))},
                {"neurn": json.dumps(meta)}))

# ---- results.jsonl ------------------------------------------------------------
split = lambda d, a: {"domain": d, "images": 40, "accuracy": a, "per_class": [a] * 10, "confusion": [[1, 0], [0, 1]]}
rec = {"run_id": "digits_convnet/mnist/seed0", "experiment": "fuzz", "model": "digits_convnet", "neurn": False,
       "source": "mnist", "seed": 0, "status": "ok", "message": "", "epochs_run": 2, "best_epoch": 2,
       "best_val_acc": 0.9, "source_test": split("mnist", 0.95), "targets": {"usps": split("usps", 0.5)},
       "skipped_targets": {"svhn": "not available"},
       "history": [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_acc": 0.6, "seconds": 1.0,
                    "images_per_second": 80.0}, {"epoch": 2, "train_loss": None, "train_acc": 0.7, "val_acc": 0.9}],
       "parameters": 1234, "wall_seconds": 2.0, "device": "cpu", "code_version": "neurn 0.1",
       "finished_at": "2026-12-01T00:00:00Z", "config": "name: fuzz\n", "variant": "digits_convnet",
       "fingerprint": "ab" * 32, "variant_fingerprint": "cd" * 32, "settings": {"model": "digits_convnet"},
       "normalize": "none", "data_sources": {"syn": "fonts 1 sha256:000000000000 + photos none"}}
rec2 = dict(rec, run_id="digits_convnet+neurn/mnist/seed0", neurn=True, status="diverged")
put("results", "two.jsonl", (json.dumps(rec) + "\n" + json.dumps(rec2) + "\n").encode())
put("results", "torn.jsonl", (json.dumps(rec) + "\n" + json.dumps(rec2)[:200]).encode())

# ---- decoded caches (NEURNU8) --------------------------------------------------
import hashlib
body = b"NEURNU8\x01" + struct.pack("<4q", 2, 3, 4, 4) + bytes([3, 9]) + bytes(range(96))
put("u8_cache", "two.u8", body + hashlib.sha256(body).hexdigest().encode())

# ---- experiment configs: the project's own, and a small one --------------------
cfgdir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "experiments", "configs")
for name in ("quickstart.yaml", "single_source.yaml"):
    with open(os.path.join(cfgdir, name), "rb") as f:
        put("config", name, f.read())
put("config", "tiny.yaml", b"name: tiny\nmodels: [digits_convnet]\nsources: [mnist]\ntargets: [usps]\n"
    b"neurn: [false, true]\nseeds: [0, 1]\nprotocol: {train_images: 80, val_images: 16, test_images: 40}\n"
    b"batch_size: 32\nmax_epochs: 2\noptimizer: {name: sgd, lr: 0.01}\ndevice: cpu\n")
