#!/usr/bin/python3
"""h5_interop.py -- the other side of tests/lua/h5_spec.lua: h5py reads a
file usagi wrote, and writes one for usagi to read.

    /usr/bin/python3 tests/reference/h5_interop.py check FILE   # usagi wrote FILE
    /usr/bin/python3 tests/reference/h5_interop.py write FILE   # h5py writes FILE

`check` asserts shapes, dtypes, values, attributes and the extendable
datasets the spec wrote, prints "ok N checks" and exits 0, or prints what
differs and exits 1. `write` makes the file whose contents the spec checks
in usagi (the values are listed in the spec beside its checks).
"""
import sys

import h5py
import numpy as np

checks = 0


def same(got, want, what):
    global checks
    checks += 1
    if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
        ok = np.shape(got) == np.shape(want) and np.array_equal(got, want)
    else:
        ok = got == want and type(got) is type(want)
    if not ok:
        raise AssertionError(f"{what}: got {got!r} ({type(got).__name__}), "
                             f"want {want!r} ({type(want).__name__})")


def dataset(f, name, dtype, shape, values):
    d = f[name]
    same(d.dtype, np.dtype(dtype), name + " dtype")
    same(d.shape, shape, name + " shape")
    same(d[()], np.asarray(values, dtype=dtype).reshape(shape), name + " values")
    return d


def check(path):
    with h5py.File(path, "r") as f:
        dataset(f, "f32", "<f4", (2, 3), [1, 2, 3, 4, 5, 6.5])
        dataset(f, "f64", "<f8", (3,), [0.1, -2, 1e300])
        dataset(f, "i32", "<i4", (2, 2), [-7, 0, 2147483647, -2147483648])
        dataset(f, "scalar", "<f4", (), 2.5)
        dataset(f, "empty", "<f4", (0, 3), [])
        dataset(f, "deep/nested/t", "<f4", (3, 2), [1, 4, 2, 5, 3, 6])   # a transposed view
        same(sorted(f.keys()), ["deep", "empty", "f32", "f64", "i32", "metrics", "scalar"],
             "root keys")

        a = f.attrs
        same(a["seed"], np.int64(42), "attr seed")
        same(a["big"], np.int64(2**53 + 1), "attr big")
        same(a["lr"], np.float64(0.1), "attr lr")
        same(a["name"], "héllo wörld", "attr name")
        same(a["yes"], np.bool_(True), "attr yes")
        same(a["no"], np.bool_(False), "attr no")
        same(a["weights"], np.array([[1, 2], [3, 4]], dtype="<f4"), "attr weights")
        same(a["weights"].dtype, np.dtype("<f4"), "attr weights dtype")
        same(list(a["plugins"]), ["rnn", "lstm"], "attr plugins")
        same(f["deep"].attrs["kind"], "group attr", "group attr")
        same(f["f32"].attrs["units"], "nats", "dataset attr")
        same(f["f32"].attrs["ids"], np.array([1, 2, 3], dtype="<i4"), "dataset attr ids")

        loss = dataset(f, "metrics/loss", "<f8", (5,), [0.5, 0.25, 0.125, 1, 2])
        same(loss.maxshape, (None,), "loss maxshape")
        same(loss.chunks is not None, True, "loss chunked")
        grad = dataset(f, "metrics/grad", "<f4", (3, 2), [1, 2, 3, 4, 5, 6])
        same(grad.maxshape, (None, 2), "grad maxshape")
        dataset(f, "metrics/step", "<i4", (3,), [1, 2, 3])
    print(f"ok {checks} checks")


def write(path):
    with h5py.File(path, "w") as f:
        f["f32"] = np.array([[1, 2, 3], [4, 5, 6.5]], dtype="<f4")
        f["f64"] = np.array([0.1, -2, 1e300], dtype="<f8")
        f["i32"] = np.array([-7, 0, 2147483647, -2147483648], dtype="<i4")
        f["u8"] = np.array([0, 7, 255], dtype="u1")
        f["i64"] = np.array([[-5, 0], [1, 2**31 - 1]], dtype="<i8")
        f["i64big"] = np.array([1, 2**40], dtype="<i8")
        f["i16be"] = np.array([-300, 300], dtype=">i2")
        f["f16"] = np.array([1.5, -2, 0.25], dtype="<f2")
        f["mask"] = np.array([True, False, True])
        f["scalar"] = np.float64(3.25)
        f["empty"] = np.zeros((2, 0), dtype="<f4")
        f["text"] = np.array([b"ab", b"cd"])
        f.create_dataset("gz", data=np.arange(1000, dtype="<f4").reshape(10, 100),
                         compression="gzip", chunks=(5, 50))
        g = f.create_group("g/h")
        g["x"] = np.arange(4, dtype="<f8")
        f.attrs["name"] = "from h5py ü"
        f.attrs["count"] = 7
        f.attrs["rate"] = 0.5
        f.attrs["flag"] = True
        f.attrs["off"] = False
        f.attrs["tags"] = ["a", "bc"]
        f.attrs["vec"] = np.array([1, 2, 3])          # int64 array
        f.attrs["i32"] = np.int32(-3)
        f.attrs["f32"] = np.float32(1.25)
        f.attrs["bytes"] = np.bytes_(b"fixed")
        g.attrs["depth"] = 2
        f["alias"] = h5py.SoftLink("/f32")
        f["ext"] = h5py.ExternalLink(path + ".other", "/x")   # usagi must not follow it
        with h5py.File(path + ".other", "w") as o:
            o["x"] = np.arange(3.0)


if __name__ == "__main__":
    try:
        {"check": check, "write": write}[sys.argv[1]](sys.argv[2])
    except AssertionError as e:
        print("FAIL", e)
        sys.exit(1)
