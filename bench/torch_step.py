#!/usr/bin/python3
"""PyTorch peer of bench/model_bench.ts: one AdamW training step of the `tiny` baseline or the `conv` preset,
same architecture.

Mirrors, layer for layer (same sizes, same number of queries / layers / points), the tfjs model of
stages/model/: model.ts (MODEL_PRESETS.tiny), vit.ts (VIT_PRESETS.tiny: SAM's image encoder, img 256,
patch 16, embed 192, depth 4, 3 heads, mlp 4, neck 128, window 8, global blocks [1, 3], decomposed
relative positions, absolute positions), pixel_decoder.ts (simple pyramid + FPN, convolutional stem),
transformer_decoder.ts (Mask2Former decoder, d 128, 120 queries, 3 layers, 4 heads, FFN 256, masked
cross-attention; queries started at nucleus centres as centers.ts: 1x1 centre head, 3x3 peak picking,
projected content, sine positions, locality prior, CenterNet focal loss; fine masks at stride 2), losses.ts + matcher.ts (Hungarian matching on 4,096 points with scipy, CE with
no-object weight 0.1, point BCE + dice on importance-sampled points, oversample 3, ratio 0.75, deep
supervision over the 4 predictions, weights 2/5/5) and train_step.ts (Adam + decoupled weight decay 0.05
on tensors of rank >= 2, lr 1e-4, global-norm clipping at 1).

`--preset conv` (MODEL_PRESETS.conv) replaces the ViT and its pyramid/stem by conv_encoder.ts (five levels
s2..s32, widths 32/64/128/192/256, 1/2/2/2/1 residual blocks: 3x3 stride-2 conv without bias, per-pixel
LayerNorm over the channels (eps 1e-6), ReLU, then basic blocks x + LN2(conv2(ReLU(LN1(conv1(x))))) -> ReLU
with 3x3 convs without bias), feeds pixel_decoder.ts's applyConvPixelDecoder (1x1 laterals from s32, s16,
s8, s4, the same FPN, fine masks fused with s2) and adds dense.ts (1x1 head D -> 3 on the stride-2 mask
features; BCE + dice on the foreground, MSE on the two distance maps, weight 1); the decoder, centre
queries and losses are the tiny ones.

Faithful in FLOPs, not in numerics (random init, torch.manual_seed(0); numpy-seeded synthetic data).

Run: /usr/bin/python3 bench/torch_step.py [threads] [batch] [--preset tiny|conv] [--steps N]
(Debian python3-torch, scipy, numpy). Prints one JSON line: {"preset", "threads", "median_s", "steps", "params"}.
"""
import argparse, json, math, os, time

PARSER = argparse.ArgumentParser(description="one AdamW training step of the tiny or conv preset in PyTorch")
PARSER.add_argument("threads", nargs="?", type=int, default=1)
PARSER.add_argument("batch", nargs="?", type=int, default=2)
PARSER.add_argument("--preset", choices=("tiny", "conv"), default="tiny")
PARSER.add_argument("--steps", type=int, default=5, help="timed steps after the warm-up (default 5)")
ARGS = PARSER.parse_args()
THREADS, PRESET = ARGS.threads, ARGS.preset
# torch links the system OpenBLAS, whose threads set_num_threads does not limit: its count is read
# from the environment when the library loads, so it is set before torch is imported
os.environ["OPENBLAS_NUM_THREADS"] = str(THREADS)
os.environ["OMP_NUM_THREADS"] = str(THREADS)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

torch.set_num_threads(THREADS)
torch.manual_seed(0)

# ---------------------------------------------------------------- configuration (MODEL_PRESETS.tiny)
IMG, PATCH, EMBED, DEPTH, HEADS, MLP, OUT_CHANS, WINDOW, GLOBAL = 256, 16, 192, 4, 3, 4, 128, 8, (1, 3)
LN_EPS = 1e-6
D, QUERIES, LAYERS, DEC_HEADS, FFN = 128, 120, 3, 4, 256
CLASSES = 5  # + no-object
BATCH = ARGS.batch
POINTS, OVERSAMPLE, IMPORTANCE = 4096, 3, 0.75  # model_bench.ts: loss { points: 4096 }
NO_OBJECT, W_CLASS, W_MASK, W_DICE = 0.1, 2.0, 5.0, 5.0
LR, WEIGHT_DECAY, CLIP = 1e-4, 0.05, 1.0
SAM_MEAN, SAM_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
# MODEL_PRESETS.conv's encoder: channels and residual blocks at strides 2, 4, 8, 16, 32
CONV_WIDTHS, CONV_BLOCKS = (32, 64, 128, 192, 256), (1, 2, 2, 2, 1)


# ---------------------------------------------------------------- ViT (SAM's ImageEncoderViT, tiny)
def rel_table(size, table):
    # q = k = size and the table already has 2·size − 1 rows: plain indexing, as SAM's get_rel_pos
    coords = torch.arange(size)
    return table[(coords[:, None] - coords[None, :] + size - 1)]  # [size, size, hd]


class Attention(nn.Module):
    def __init__(self, dim, heads, grid):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * grid - 1, self.hd))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * grid - 1, self.hd))

    def forward(self, x):  # [Bw, h, w, D]
        Bw, h, w, dim = x.shape
        N = h * w
        qkv = self.qkv(x.reshape(Bw, N, dim)).reshape(Bw, N, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, Bw * self.heads, N, self.hd).unbind(0)
        logits = (q * self.hd ** -0.5) @ k.transpose(1, 2)  # [Bw·h, N, N]
        Rh, Rw = rel_table(h, self.rel_pos_h), rel_table(w, self.rel_pos_w)
        qg = q.reshape(Bw * self.heads, h, w, self.hd)
        bias_h = torch.einsum("byxc,ykc->byxk", qg, Rh)
        bias_w = torch.einsum("byxc,xkc->byxk", qg, Rw)
        logits = (logits.reshape(Bw * self.heads, h, w, h, w) + bias_h[..., :, None] + bias_w[..., None, :])
        out = logits.reshape(Bw * self.heads, N, N).softmax(-1) @ v  # [Bw·h, N, hd]
        out = out.reshape(Bw, self.heads, h, w, self.hd).permute(0, 2, 3, 1, 4).reshape(Bw, h, w, dim)
        return self.proj(out)


class Block(nn.Module):
    def __init__(self, dim, heads, window):
        super().__init__()
        self.window = window
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads, window if window > 0 else IMG // PATCH)
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.lin1, self.lin2 = nn.Linear(dim, MLP * dim), nn.Linear(MLP * dim, dim)

    def forward(self, x):  # [B, H, W, D]
        B, H, W, C = x.shape
        y = self.norm1(x)
        ws = self.window
        if ws > 0:  # the 16×16 grid tiles into 8×8 windows exactly (no padding)
            y = y.reshape(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, C)
            y = self.attn(y)
            y = y.reshape(B, H // ws, W // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5).reshape(B, H, W, C)
        else:
            y = self.attn(y)
        x = x + y
        return x + self.lin2(F.gelu(self.lin1(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self):
        super().__init__()
        g = IMG // PATCH
        self.patch = nn.Conv2d(3, EMBED, PATCH, stride=PATCH)
        self.pos_embed = nn.Parameter(torch.randn(1, g, g, EMBED) * 0.02)
        self.blocks = nn.ModuleList([Block(EMBED, HEADS, 0 if i in GLOBAL else WINDOW) for i in range(DEPTH)])
        self.neck1 = nn.Conv2d(EMBED, OUT_CHANS, 1, bias=False)
        self.neck_norm1 = nn.LayerNorm(OUT_CHANS, eps=LN_EPS)
        self.neck2 = nn.Conv2d(OUT_CHANS, OUT_CHANS, 3, padding=1, bias=False)
        self.neck_norm2 = nn.LayerNorm(OUT_CHANS, eps=LN_EPS)

    def forward(self, x):  # [B, 3, H, W] -> [B, OUT, H/16, W/16]
        x = self.patch(x).permute(0, 2, 3, 1) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        x = self.neck_norm1(self.neck1(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.neck_norm2(self.neck2(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


# ---------------------------------------------------------------- conv encoder (conv_encoder.ts, `conv`)
def channel_norm(x, norm):  # per-pixel LayerNorm over the channels of NCHW (layers.ts layerNorm on NHWC)
    y = F.layer_norm(x.permute(0, 2, 3, 1), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
    return y.permute(0, 3, 1, 2)


class ConvBlock(nn.Module):  # ResNet's basic block with channel LayerNorms; LN2's scale starts at 0 (zero-γ)
    def __init__(self, c):
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.LayerNorm(c, eps=LN_EPS)
        self.conv2, self.norm2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.LayerNorm(c, eps=LN_EPS)
        nn.init.zeros_(self.norm2.weight)

    def forward(self, x):
        h = F.relu(channel_norm(self.conv1(x), self.norm1))
        return F.relu(x + channel_norm(self.conv2(h), self.norm2))


class ConvLevel(nn.Module):  # 3x3 stride-2 conv -> LN -> ReLU, then the level's blocks
    def __init__(self, c_in, c, blocks):
        super().__init__()
        self.down, self.norm = nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), nn.LayerNorm(c, eps=LN_EPS)
        self.blocks = nn.ModuleList([ConvBlock(c) for _ in range(blocks)])

    def forward(self, x):
        x = F.relu(channel_norm(self.down(x), self.norm))
        for b in self.blocks:
            x = b(x)
        return x


class ConvEncoder(nn.Module):
    def __init__(self, widths, blocks):
        super().__init__()
        inputs = (3,) + tuple(widths[:-1])
        self.levels = nn.ModuleList([ConvLevel(i, c, n) for i, c, n in zip(inputs, widths, blocks)])

    def forward(self, x):  # [B, 3, H, W] -> [s2, s4, s8, s16, s32]
        out = []
        for level in self.levels:
            x = level(x)
            out.append(x)
        return out


# ---------------------------------------------------------------- pixel decoder (pyramid + FPN + stem)
def up(x, f):
    return F.interpolate(x, scale_factor=f, mode="nearest")


class FPN(nn.Module):  # pixel_decoder.ts topDown: the FPN, the stride-4 mask features and the fine masks
    def add_fpn(self, d, lateral_channels, skip_channels):  # 1x1 laterals for s32, s16, s8, s4, then the FPN's
        self.lateral = nn.ModuleList([nn.Conv2d(c, d, 1) for c in lateral_channels])
        self.output = nn.ModuleList([nn.Conv2d(d, d, 3, padding=1) for _ in range(4)])
        self.mask_features = nn.Conv2d(d, d, 1)
        # fine masks (stride 2): the skip's 1x1 lateral and the output
        self.fine_lateral, self.fine_output = nn.Conv2d(skip_channels, d, 1), nn.Conv2d(d, d, 1)

    def top_down(self, s32, s16, s8, s4, skip2):
        o32 = F.relu(self.output[0](s32))
        o16 = F.relu(self.output[1](s16 + up(o32, 2)))
        o8 = F.relu(self.output[2](s8 + up(o16, 2)))
        o4 = F.relu(self.output[3](s4 + up(o8, 2)))
        fine = F.relu(up(o4, 2) + self.fine_lateral(skip2))
        return self.fine_output(fine), self.mask_features(o4), [o32, o16, o8]


class PixelDecoder(FPN):  # the ViT's: simple pyramid, stem on the image
    def __init__(self, vit_channels, d):
        super().__init__()
        s = max(8, d // 4)
        self.stem1, self.stem2 = nn.Conv2d(3, s, 3, stride=2, padding=1), nn.Conv2d(s, d, 3, stride=2, padding=1)
        self.add_fpn(d, [vit_channels] * 4, s)

    def forward(self, image, vit):  # NCHW
        s32 = self.lateral[0](F.max_pool2d(vit, 2, 2))
        s16 = self.lateral[1](vit)
        s8 = self.lateral[2](up(vit, 2))
        stem1 = F.relu(self.stem1(image))
        s4 = self.lateral[3](up(vit, 4)) + F.relu(self.stem2(stem1))
        return self.top_down(s32, s16, s8, s4, stem1)


class ConvPixelDecoder(FPN):  # applyConvPixelDecoder: 1x1 laterals from s32, s16, s8, s4; fine masks on s2
    def __init__(self, widths, d):
        super().__init__()
        self.add_fpn(d, [widths[l] for l in (4, 3, 2, 1)], widths[0])

    def forward(self, levels):  # NCHW, finest first
        e2, e4, e8, e16, e32 = levels
        return self.top_down(*(lat(e) for lat, e in zip(self.lateral, (e32, e16, e8, e4))), e2)


# ---------------------------------------------------------------- Mask2Former transformer decoder
class MHA(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.out = (nn.Linear(d, d) for _ in range(4))

    def forward(self, q, k, v, bias=None):  # [B, L, D]; bias [B, Lq, Lk] shared by the heads
        b, lq, d = q.shape
        lk, h, dh = k.shape[1], self.heads, d // self.heads
        proj = lambda x, lin, l: lin(x).reshape(b, l, h, dh).transpose(1, 2)  # [B, h, L, dh]
        qh, kh, vh = proj(q, self.q, lq), proj(k, self.k, lk), proj(v, self.v, lk)
        scores = qh @ kh.transpose(-1, -2) / math.sqrt(dh)  # [B, h, Lq, Lk]
        if bias is not None:
            scores = scores + bias[:, None]
        out = (scores.softmax(-1) @ vh).transpose(1, 2).reshape(b, lq, d)
        return self.out(out)


def sine_positions(h, w, d):
    half = d // 2
    pos = np.zeros((h, w, d), np.float32)
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ey, ex = (ys + 1) / h * 2 * np.pi, (xs + 1) / w * 2 * np.pi
    for i in range(half // 2):
        freq = 1 / 10000 ** (2 * i / half)
        pos[..., 2 * i], pos[..., 2 * i + 1] = np.sin(ey * freq), np.cos(ey * freq)
        pos[..., half + 2 * i], pos[..., half + 2 * i + 1] = np.sin(ex * freq), np.cos(ex * freq)
    return torch.from_numpy(pos.reshape(h * w, d))


class DecoderLayer(nn.Module):
    def __init__(self, d, heads, ffn):
        super().__init__()
        self.cross, self.cross_norm = MHA(d, heads), nn.LayerNorm(d)
        self.self_attn, self.self_norm = MHA(d, heads), nn.LayerNorm(d)
        self.ffn1, self.ffn2, self.ffn_norm = nn.Linear(d, ffn), nn.Linear(ffn, d), nn.LayerNorm(d)


class Decoder(nn.Module):
    def __init__(self, d, queries, layers, heads, ffn, classes):
        super().__init__()
        self.heads = heads
        self.level_embed = nn.Parameter(torch.randn(3, d))
        self.layers = nn.ModuleList([DecoderLayer(d, heads, ffn) for _ in range(layers)])
        self.norm = nn.LayerNorm(d)
        self.class_head = nn.Linear(d, classes + 1)
        self.mask_embed = nn.ModuleList([nn.Linear(d, d) for _ in range(3)])

    def predict(self, queries, mask_features, prior):  # [B, Q, D], [B, D, h, w], [B, Q, h, w]
        x = self.norm(queries)
        logits = self.class_head(x)
        e = F.relu(self.mask_embed[0](x))
        e = self.mask_embed[2](F.relu(self.mask_embed[1](e)))
        masks = torch.einsum("bqd,bdhw->bqhw", e, mask_features) + prior
        return logits, masks

    @staticmethod
    def attention_bias(masks, h, w):  # detached: 0 where sigmoid >= 0.5, -1e9 elsewhere; all-hidden -> open
        with torch.no_grad():
            m = F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False).flatten(2) >= 0
            m = m | ~m.any(-1, keepdim=True)
            return torch.where(m, 0.0, -1e9)  # [B, Q, hw]

    def forward(self, levels, mask_features, start):
        b = mask_features.shape[0]
        memories = []
        for i, lv in enumerate(levels):
            _, d, h, w = lv.shape
            value = lv.flatten(2).transpose(1, 2)  # [B, hw, D]
            memories.append((h, w, value, value + sine_positions(h, w, d) + self.level_embed[i]))
        queries, query_pos, prior = start
        outputs = [self.predict(queries, mask_features, prior)]
        for l, lp in enumerate(self.layers):
            h, w, value, key = memories[l % len(memories)]
            bias = self.attention_bias(outputs[-1][1], h, w)
            queries = lp.cross_norm(queries + lp.cross(queries + query_pos, key, value, bias))
            qk = queries + query_pos
            queries = lp.self_norm(queries + lp.self_attn(qk, qk, queries))
            queries = lp.ffn_norm(queries + lp.ffn2(F.relu(lp.ffn1(queries))))
            outputs.append(self.predict(queries, mask_features, prior))
        return outputs


def sine_points(ys, xs, d):  # normalised (y, x) -> [N, D]
    half = d // 2
    i = torch.arange(half // 2, dtype=torch.float32)
    freq = 1 / 10000 ** (2 * i / half)
    ey, ex = ys[:, None] * 2 * math.pi * freq, xs[:, None] * 2 * math.pi * freq
    y = torch.stack([ey.sin(), ey.cos()], -1).flatten(1)
    x = torch.stack([ex.sin(), ex.cos()], -1).flatten(1)
    return torch.cat([y, x], 1)


class Centers(nn.Module):  # centers.ts
    def __init__(self, d):
        super().__init__()
        self.head, self.content = nn.Conv2d(d, 1, 1), nn.Linear(d, d)
        self.log_locality = nn.Parameter(torch.tensor([math.log(1 / 18)]))

    def forward(self, mask_features, mh, mw):  # [B, D, h, w] -> logits [B, h, w], (content, positions, prior)
        b, d, h, w = mask_features.shape
        heat = self.head(mask_features)[:, 0]
        with torch.no_grad():
            peak = heat >= F.max_pool2d(heat[:, None], 3, 1, 1)[:, 0]
            cells = (peak.double() * 1e6 + heat.double()).flatten(1).topk(QUERIES, dim=1).indices  # [B, Q]
            ys, xs = (cells // w).float(), (cells % w).float()
            positions = sine_points(((ys + 1) / h).flatten(), ((xs + 1) / w).flatten(), d).view(b, QUERIES, d)
            gy, gx = torch.meshgrid(torch.arange(mh).float(), torch.arange(mw).float(), indexing="ij")
            gy, gx = (gy + 0.5) * h / mh - 0.5, (gx + 0.5) * w / mw - 0.5  # mask cells in stride-4 cells
            d2 = (gy[None, None] - ys[..., None, None]) ** 2 + (gx[None, None] - xs[..., None, None]) ** 2
        feats = mask_features.flatten(2).transpose(1, 2)  # [B, hw, D]
        content = self.content(torch.gather(feats, 1, cells[..., None].expand(-1, -1, d)))
        return heat, (content, positions, -self.log_locality.exp() * d2)


def center_focal_loss(logits, targets):  # centers.ts: CenterNet, alpha 2, beta 4
    p, pos = logits.sigmoid(), (targets >= 1).float()
    loss = pos * (1 - p) ** 2 * F.logsigmoid(logits) + (1 - pos) * (1 - targets) ** 4 * p**2 * F.logsigmoid(-logits)
    return -loss.sum() / pos.sum().clamp(min=1)


def dense_loss(predicted, targets):  # dense.ts denseLoss, summed as train_step.ts denseTotal: [B, 3, h, w] both
    logits, fg = predicted[:, 0].flatten(1), targets[:, 0].flatten(1)  # [B, h·w]
    bce = F.binary_cross_entropy_with_logits(logits, fg)
    p = logits.sigmoid()
    dice = (1 - (2 * (p * fg).sum(1) + 1) / (p.sum(1) + fg.sum(1) + 1)).mean()
    return bce + dice + F.mse_loss(predicted[:, 1:], targets[:, 1:])


class Model(nn.Module):
    def __init__(self, preset):
        super().__init__()
        self.register_buffer("mean", torch.tensor(SAM_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(SAM_STD).view(1, 3, 1, 1))
        if preset == "conv":
            self.encoder = ConvEncoder(CONV_WIDTHS, CONV_BLOCKS)
            self.pixel_decoder = ConvPixelDecoder(CONV_WIDTHS, D)
            self.dense = nn.Conv2d(D, 3, 1)  # dense.ts: foreground logit, horizontal, vertical
        else:
            self.vit = ViT()
            self.pixel_decoder = PixelDecoder(OUT_CHANS, D)
        self.decoder = Decoder(D, QUERIES, LAYERS, DEC_HEADS, FFN, CLASSES)
        self.centers = Centers(D)

    def forward(self, images_nhwc):  # [B, H, W, 3] in 0-255
        x = (images_nhwc.permute(0, 3, 1, 2) - self.mean) / self.std
        if hasattr(self, "encoder"):
            mask_features, coarse, levels = self.pixel_decoder(self.encoder(x))
            dense = self.dense(mask_features)  # [B, 3, H/2, W/2]
        else:
            mask_features, coarse, levels = self.pixel_decoder(x, self.vit(x))
            dense = None
        heat, start = self.centers(coarse, mask_features.shape[2], mask_features.shape[3])
        # [(logits [B, Q, C+1], masks [B, Q, H/2, W/2])] × 4, centre logits [B, H/4, W/4], dense maps or None
        return self.decoder(levels, mask_features, start), heat, dense


# ---------------------------------------------------------------- Mask2Former loss (matcher + criterion)
def point_sample(masks, coords):  # masks [K, h, w]; coords [K, P, 2] or [P, 2] (x, y) in [0, 1] -> [K, P]
    K = masks.shape[0]
    if coords.dim() == 2:
        coords = coords[None].expand(K, -1, -1)
    out = F.grid_sample(masks[:, None], 2 * coords[:, None] - 1, mode="bilinear", align_corners=False)
    return out[:, 0, 0]


def match(logits, masks, classes, tmasks, gen):  # one image: [Q, C+1], [Q, h, w], [N], [N, H, W]
    with torch.no_grad():
        coords = torch.rand(POINTS, 2, generator=gen)
        out, tgt = point_sample(masks, coords), point_sample(tmasks, coords)  # [Q, P], [N, P]
        class_cost = -logits.softmax(-1)[:, classes]  # [Q, N]
        bce = (F.softplus(-out) @ tgt.T + F.softplus(out) @ (1 - tgt).T) / POINTS
        p = out.sigmoid()
        dice = 1 - (2 * p @ tgt.T + 1) / (p.sum(1, keepdim=True) + tgt.sum(1)[None] + 1)
        cost = W_CLASS * class_cost + W_MASK * bce + W_DICE * dice
        rows, cols = linear_sum_assignment(cost.double().numpy())
    return torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)


def uncertain_points(masks, gen):  # masks [M, h, w] logits -> [M, P, 2]
    M = masks.shape[0]
    S, U = int(POINTS * OVERSAMPLE), int(IMPORTANCE * POINTS)
    with torch.no_grad():
        cand = torch.rand(M, S, 2, generator=gen)
        top = (-point_sample(masks, cand).abs()).topk(U, dim=1).indices  # [M, U]
        chosen = torch.gather(cand, 1, top[..., None].expand(-1, -1, 2))
        return torch.cat([chosen, torch.rand(M, POINTS - U, 2, generator=gen)], 1)


def mask_former_loss(outputs, targets, gen):
    num_masks = max(1, sum(len(c) for c, _ in targets))
    total = 0.0
    for logits, masks in outputs:  # deep supervision: every prediction, matched on its own
        B, Q, C1 = logits.shape
        labels = torch.full((B, Q), C1 - 1, dtype=torch.long)
        preds, tgts = [], []
        for b, (classes, tmasks) in enumerate(targets):
            qi, ti = match(logits[b].detach(), masks[b].detach(), classes, tmasks, gen)
            labels[b, qi] = classes[ti]
            matched = masks[b, qi]  # [M, h, w], on the gradient path
            coords = uncertain_points(matched.detach(), gen)
            preds.append(point_sample(matched, coords))
            with torch.no_grad():
                tgts.append(point_sample(tmasks[ti], coords))
        weight = torch.ones(C1)
        weight[-1] = NO_OBJECT
        class_loss = F.cross_entropy(logits.reshape(B * Q, C1), labels.reshape(-1), weight=weight)
        x, t = torch.cat(preds), torch.cat(tgts)
        bce = F.binary_cross_entropy_with_logits(x, t, reduction="none").mean(1).sum() / num_masks
        p = x.sigmoid()
        dice = (1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).sum() / num_masks
        total = total + W_CLASS * class_loss + W_MASK * bce + W_DICE * dice
    return total


# ---------------------------------------------------------------- synthetic batch (numpy, seeded)
def by_side(v):  # offsets from the centroid over the largest on their side (HoVer-Net): both sides reach ±1
    lo, hi = max(0.0, -float(v.min())), max(0.0, float(v.max()))
    return np.where(v < 0, v / (lo or 1), v / (hi or 1))


def dense_targets(masks, stride=2):  # dense.ts denseTargets on the instance map (later nuclei on top) -> [3, h, w]
    n = masks.shape[0]
    instances = np.zeros(masks.shape[1:], np.int64)
    for i in range(n):
        instances[masks[i] > 0] = i + 1
    full = np.zeros((3,) + masks.shape[1:], np.float32)
    for i in range(1, n + 1):
        ys, xs = np.nonzero(instances == i)
        if len(ys) == 0:
            continue
        dx, dy = xs - xs.mean(), ys - ys.mean()
        full[0, ys, xs], full[1, ys, xs], full[2, ys, xs] = 1, by_side(dx), by_side(dy)
    c, h, w = full.shape
    return full.reshape(c, h // stride, stride, w // stride, stride).mean((2, 4))


def synthetic_batch(rng):
    images = rng.uniform(0, 255, (BATCH, IMG, IMG, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:IMG, 0:IMG].astype(np.float32)
    targets, heats, dense = [], [], []
    for _ in range(BATCH):
        n = int(rng.integers(55, 66))  # ≈ 60 nuclei, like a synthetic tile (≈ 66)
        cy, cx = rng.uniform(0, IMG, n), rng.uniform(0, IMG, n)
        ry, rx, th = rng.uniform(3, 15, n), rng.uniform(3, 15, n), rng.uniform(0, np.pi, n)
        masks = np.empty((n, IMG, IMG), np.float32)
        for i in range(n):
            dy, dx = yy - cy[i], xx - cx[i]
            u = (dx * np.cos(th[i]) + dy * np.sin(th[i])) / rx[i]
            v = (-dx * np.sin(th[i]) + dy * np.cos(th[i])) / ry[i]
            masks[i] = (u * u + v * v) <= 1
        classes = torch.as_tensor(rng.integers(0, CLASSES, n), dtype=torch.long)
        targets.append((classes, torch.from_numpy(masks)))
        # centre targets (as centers.ts, built outside the step as batchOf does): Gaussians at centroids
        h4 = IMG // 4
        gy, gx = np.mgrid[0:h4, 0:h4].astype(np.float32)
        heat = np.zeros((h4, h4), np.float32)
        for i in range(n):
            area = max(1.0, masks[i].sum())
            ty, tx = (cy[i] + 0.5) / 4 - 0.5, (cx[i] + 0.5) / 4 - 0.5
            sigma = max(0.5, math.sqrt(area / math.pi) / 4 / 3)
            heat = np.maximum(heat, np.exp(-((gy - ty) ** 2 + (gx - tx) ** 2) / (2 * sigma**2)))
            heat[min(h4 - 1, max(0, round(ty))), min(h4 - 1, max(0, round(tx)))] = 1
        heats.append(heat)
        if PRESET == "conv":
            dense.append(dense_targets(masks))  # built outside the step, as batchOf's denseStride
    return (torch.from_numpy(images), targets, torch.from_numpy(np.stack(heats)),
            torch.from_numpy(np.stack(dense)) if dense else None)


# ---------------------------------------------------------------- the step
def main():
    model = Model(PRESET)
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    # train_step.ts: decoupled weight decay only on tensors of rank >= 2
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=LR,
    )
    images, targets, heats, dense_truth = synthetic_batch(np.random.default_rng(0))
    gen = torch.Generator().manual_seed(0)

    def step():
        optimizer.zero_grad(set_to_none=True)
        outputs, heat, dense = model(images)
        loss = mask_former_loss(outputs, targets, gen) + center_focal_loss(heat, heats)
        if dense is not None:
            loss = loss + dense_loss(dense, dense_truth)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        optimizer.step()
        return float(loss)

    step()  # warm-up
    times = []
    for _ in range(ARGS.steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    median = sorted(times)[len(times) // 2]
    print(json.dumps({"preset": PRESET, "threads": THREADS, "median_s": median, "steps": times, "params": n_params}))


if __name__ == "__main__":
    main()
