#!/usr/bin/python3
"""Export torchvision's ImageNet weights of one model as a safetensors file
that neurn loads (experiments: `weights:` of a model entry; `neurn forward
--weights`). The tensor names are torchvision's state-dict keys, which are
neurn's parameter and buffer names (docs/models.md, "Weights").

    scripts/export_torchvision_weights.py --model resnet50 --out weights/resnet50_imagenet.safetensors
    scripts/export_torchvision_weights.py --model resnet50 --pth resnet50-11ad3fa6.pth --out ...

Needs /usr/bin/python3 with torch and torchvision (Debian: apt-get install
python3-torch python3-torchvision). The weights themselves come from
  --pth FILE        a state dict as torchvision downloads it (a .pth file), or
  the torch hub cache ($TORCH_HOME/hub/checkpoints/, ~/.cache/torch/...), or
  a download from download.pytorch.org, where the machine can reach it.
When none is available the script prints the URL and the cache path of the
file it needs and exits with status 2. `--list` prints the model names and
their weight sets.

The file's __metadata__ says where the weights come from and the input
normalization they were trained with ("normalize": ImageNet mean and std,
as torchvision's transforms apply them to [0, 1] RGB inputs).
"""
import argparse
import json
import os
import struct
import sys

ST = {}


def save_safetensors(path, tensors, metadata):
    import torch
    dtypes = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.int64: "I64",
              torch.int32: "I32", torch.uint8: "U8"}
    header, blobs, offset = {"__metadata__": {k: str(v) for k, v in metadata.items()}}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype not in dtypes:
            sys.exit("export: tensor %s has dtype %s, which safetensors here does not carry" % (name, t.dtype))
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def unwrap(sd):
    """A .pth may hold the state dict itself or wrap it ({"state_dict": ...}, {"model": ...})."""
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
    if not isinstance(sd, dict):
        sys.exit("export: the .pth file does not hold a state dict (got %s)" % type(sd).__name__)
    return sd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="torchvision model name (resnet50, vgg19, densenet121, mobilenet_v2, ...)")
    ap.add_argument("--out", help="the safetensors file to write")
    ap.add_argument("--pth", help="a local torchvision state dict (.pth); default: the hub cache, else a download")
    ap.add_argument("--weights", default="DEFAULT", help="torchvision weight set (IMAGENET1K_V1, ...; default DEFAULT)")
    ap.add_argument("--list", action="store_true", help="list the models with ImageNet weights and exit")
    a = ap.parse_args()
    try:
        import torch
        import torchvision
    except ImportError as e:
        print("export: needs torch and torchvision in this python (%s); on Debian: apt-get install python3-torch "
              "python3-torchvision" % e, file=sys.stderr)
        return 2
    models = torchvision.models
    if a.list:
        for name in sorted(models.list_models(module=models)):
            try:
                print(name, " ".join(w.name for w in models.get_model_weights(name)))
            except (KeyError, ValueError):
                pass
        return 0
    if not a.model or not a.out:
        ap.error("--model and --out are required")
    try:
        enum = models.get_model_weights(a.model)
    except (KeyError, ValueError):
        print("export: torchvision %s has no model '%s' with weights (--list shows them)" %
              (torchvision.__version__, a.model), file=sys.stderr)
        return 2
    try:
        w = enum[a.weights] if a.weights != "DEFAULT" else enum.DEFAULT
    except KeyError:
        print("export: %s has no weight set %s (it has: %s)" % (a.model, a.weights, ", ".join(x.name for x in enum)),
              file=sys.stderr)
        return 2
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(w.url))
    if a.pth:
        if not os.path.exists(a.pth):
            print("export: %s does not exist" % a.pth, file=sys.stderr)
            return 2
        sd = unwrap(torch.load(a.pth, map_location="cpu"))
        origin = a.pth
    elif os.path.exists(cached):
        sd = unwrap(torch.load(cached, map_location="cpu"))
        origin = cached
    else:
        try:
            sd = w.get_state_dict(progress=True)
            origin = w.url
        except Exception as e:  # no network here
            print("export: cannot download %s (%s).\nexport: it needs the file %s: fetch it on a machine that can "
                  "reach download.pytorch.org and pass --pth FILE, or put it at %s" %
                  (w.url, e.__class__.__name__, os.path.basename(w.url), cached), file=sys.stderr)
            return 2
    # Built with the weights' class count and loaded strictly: a file for
    # another architecture fails here, naming the keys, not later in neurn.
    kwargs = {"num_classes": len(w.meta["categories"])}
    if a.model in ("inception_v3", "googlenet"):
        kwargs.update(aux_logits=True, init_weights=False)
    model = getattr(models, a.model)(weights=None, **kwargs)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        print("export: %s does not fit torchvision's %s:\n%s" % (origin, a.model, e), file=sys.stderr)
        return 2
    t = w.transforms()
    meta = {"source": "torchvision", "model": a.model, "weights": str(w), "origin": origin,
            "torchvision": torchvision.__version__,
            "normalize": json.dumps({"mode": "imagenet", "mean": list(t.mean), "std": list(t.std)}),
            "input_size": str(t.crop_size[0] if hasattr(t, "crop_size") else "")}
    state = model.state_dict()
    save_safetensors(a.out, state, meta)
    print("export: %s (%s, %d tensors, %d parameters) -> %s" %
          (a.model, w, len(state), sum(p.numel() for p in model.parameters()), a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
