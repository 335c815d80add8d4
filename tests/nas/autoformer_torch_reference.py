"""An independent PyTorch computation of an AutoFormer subnet from supernet
weights, for test_autoformer_torch.cpp, written from the reference's
semantics (microsoft/Cream Vision_TransformerSuper with change_qkv): top-left
slices of every super weight; qkv rows q, k, v = rows 0, 1, 2 mod 3 of the
first 3 * heads * head_dim rows; pre-norm blocks, GELU, LayerNorm eps 1e-5,
final norm, class token, head. float64 throughout. With MAX_REL > 0, the
reference's relative positions (RelativePosition2D_super for k and v):
tables (2 MAX_REL + 2, units) sliced to their first HEAD_DIM columns, looked
up by integer index (not neurn's one-hot product), the class token at row 0.

usage: autoformer_torch_reference.py WEIGHTS.safetensors INPUT.safetensors OUT.safetensors EMBED HEADS RATIOS HEAD_DIM PATCH [MAX_REL]
(HEADS and RATIOS comma-separated; the input tensor is named "x", the output "y")."""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

NP = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        b, e = h["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype=NP[h["dtype"]]).copy()).reshape(h["shape"])
    return out


def write(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().double().contiguous().numpy().tobytes()
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def rel_embeddings(tv, th, n, max_rel, hd):
    """(n, n, hd): tv[index_v] + th[index_h], the class token's pairs at index 0."""
    side = int((n - 1) ** 0.5)
    pos = torch.arange(n - 1)
    dv = (pos[None, :] // side - pos[:, None] // side).clamp(-max_rel, max_rel) + max_rel + 1
    dh = (pos[None, :] % side - pos[:, None] % side).clamp(-max_rel, max_rel) + max_rel + 1
    iv = torch.zeros(n, n, dtype=torch.long)
    ih = torch.zeros(n, n, dtype=torch.long)
    iv[1:, 1:] = dv
    ih[1:, 1:] = dh
    return tv[:, :hd][iv] + th[:, :hd][ih]


def main():
    wpath, xpath, opath, embed, heads, ratios, head_dim, patch = sys.argv[1:9]
    max_rel = int(sys.argv[9]) if len(sys.argv) > 9 else 0
    w = {k: v.double() for k, v in read(wpath).items()}
    x = read(xpath)["x"].double()
    d, hd, p = int(embed), int(head_dim), int(patch)
    heads = [int(h) for h in heads.split(",")]
    ratios = [float(r) for r in ratios.split(",")]
    b = x.shape[0]
    t = F.conv2d(x, w["patch_embed_super.proj.weight"][:d], w["patch_embed_super.proj.bias"][:d], stride=p)
    t = t.flatten(2).transpose(1, 2)
    t = torch.cat([w["cls_token"][..., :d].expand(b, -1, -1), t], dim=1) + w["pos_embed"][..., :d]
    n = t.shape[1]
    for i, (h, r) in enumerate(zip(heads, ratios)):
        pre = f"blocks.{i}."
        q = h * hd
        m = int(d * r)
        y = F.layer_norm(t, (d,), w[pre + "attn_layer_norm.weight"][:d], w[pre + "attn_layer_norm.bias"][:d], 1e-5)
        wq = w[pre + "attn.qkv.weight"][: 3 * q, :d]
        bq = w[pre + "attn.qkv.bias"][: 3 * q]
        wq = torch.cat([wq[j::3] for j in range(3)], 0)
        bq = torch.cat([bq[j::3] for j in range(3)], 0)
        qkv = F.linear(y, wq, bq).reshape(b, n, 3, h, hd).permute(2, 0, 3, 1, 4)
        logits = qkv[0] @ qkv[1].transpose(-2, -1)
        if max_rel:
            ek = rel_embeddings(w[pre + "attn.rel_pos_embed_k.embeddings_table_v"],
                                w[pre + "attn.rel_pos_embed_k.embeddings_table_h"], n, max_rel, hd)
            logits = logits + torch.einsum("bhic,ijc->bhij", qkv[0], ek)
        att = torch.softmax(logits * hd ** -0.5, dim=-1)
        y = att @ qkv[2]
        if max_rel:
            ev = rel_embeddings(w[pre + "attn.rel_pos_embed_v.embeddings_table_v"],
                                w[pre + "attn.rel_pos_embed_v.embeddings_table_h"], n, max_rel, hd)
            y = y + torch.einsum("bhij,ijc->bhic", att, ev)
        y = y.transpose(1, 2).reshape(b, n, q)
        t = t + F.linear(y, w[pre + "attn.proj.weight"][:d, :q], w[pre + "attn.proj.bias"][:d])
        y = F.layer_norm(t, (d,), w[pre + "ffn_layer_norm.weight"][:d], w[pre + "ffn_layer_norm.bias"][:d], 1e-5)
        y = F.gelu(F.linear(y, w[pre + "fc1.weight"][:m, :d], w[pre + "fc1.bias"][:m]))
        t = t + F.linear(y, w[pre + "fc2.weight"][:d, :m], w[pre + "fc2.bias"][:d])
    t = F.layer_norm(t, (d,), w["norm.weight"][:d], w["norm.bias"][:d], 1e-5)
    out = F.linear(t[:, 0], w["head.weight"][:, :d], w["head.bias"])
    write(opath, {"y": out})


if __name__ == "__main__":
    main()
