"""Acoustic model: global CMVN -> SpecAugment -> espnet2 encoder -> CTC and/or senone outputs.

Outputs (either or both; both is multi-task training on one encoder):
- ``ctc``: espnet2's CTC layer over subwords (decoded by prefix search or over TLG);
- ``senone_head``: the hybrid output, a senone softmax per 10 ms frame trained by frame
  cross-entropy on the stage-4 alignment (:class:`FrameClassifier`); decoded over HCLG with
  log posterior - log prior as pseudo log-likelihoods.

The encoder (Conformer by default) and the CTC layer are espnet2's own modules; this class only
wires them and keeps CMVN statistics and senone priors with the weights, so that decoding needs no
extra files.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
from espnet2.asr.encoder.transformer_encoder import TransformerEncoder
from espnet2.asr.specaug.specaug import SpecAug

from espnet_distill.kd.codebooks import CodebookHead, HintHead
from espnet_distill.kd.losses import kd_kl_sum, label_interpolation_sum
from espnet_distill.models.upstream import WeightedSum, load_upstream
from espnet_distill.nn import frame_mask

ENCODERS = {"conformer": ConformerEncoder, "transformer": TransformerEncoder}


class LightConv2dSubsampling(torch.nn.Module):
    """4x time subsampling with two narrow stride-2 convolutions, then a projection to ``odim``.

    espnet2's Conv2dSubsampling uses ``odim`` channels in both convolutions; at odim=144 that layer
    alone costs more than all Conformer blocks together on a CPU. Narrow convolutions (as icefall's
    Zipformer front-end does) keep most of the benefit at a small fraction of the cost.
    Shapes: (B, T, F), (B,) -> (B, T', odim), (B,) with T' = ((T - 1) // 2 - 1) // 2.
    """

    def __init__(self, idim: int, odim: int, channels: tuple[int, int] = (16, 32)) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv = torch.nn.Sequential(
            torch.nn.Conv2d(1, c1, 3, 2),
            torch.nn.ReLU(),
            torch.nn.Conv2d(c1, c2, 3, 2),
            torch.nn.ReLU(),
        )
        freq = ((idim - 1) // 2 - 1) // 2
        self.out = torch.nn.Sequential(torch.nn.Linear(c2 * freq, odim), torch.nn.LayerNorm(odim))

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv(x.unsqueeze(1))  # (B, C, T', F')
        b, c, t, f = x.shape
        x = self.out(x.transpose(1, 2).reshape(b, t, c * f))
        return x, ((lens - 1) // 2 - 1) // 2


class SslFrontend(torch.nn.Module):
    """A distilled (or any) SSL upstream as the acoustic front-end: 16 kHz audio -> its layers
    (50 frames a second) -> learnt softmax-weighted sum -> a stride-2 convolution to ``odim``:
    40 ms frames, as the fbank front-end's 4x subsampling gives, so the 10 ms heads still
    upsample by 4. ``freeze``: the upstream stays fixed (eval mode, no gradient); otherwise it
    is fine-tuned with the rest.
    Shapes: (B, S), (B,) samples -> (B, T', odim), (B,) with T' = (frames - 1) // 2 + 1.
    """

    def __init__(self, upstream: Path | str, odim: int, freeze: bool = True) -> None:
        super().__init__()

        if not Path(upstream).exists():
            raise FileNotFoundError(
                f"model.ssl_frontend.upstream: {upstream} does not exist "
                "(the ssl1 recipe's stage 3 or 4 writes it)"
            )
        self.upstream = load_upstream(Path(upstream))
        self.freeze = freeze
        if freeze:
            self.upstream.requires_grad_(False)
        with torch.no_grad():
            states, _ = self.upstream.eval().hidden_states(torch.zeros(1, 16000))
        self.featurizer = WeightedSum(len(states))
        self.conv = torch.nn.Sequential(
            torch.nn.Conv1d(states[0].shape[-1], odim, 3, stride=2, padding=1), torch.nn.GELU()
        )
        self.norm = torch.nn.LayerNorm(odim)

    def train(self, mode: bool = True) -> SslFrontend:
        super().train(mode)
        if self.freeze:
            self.upstream.eval()  # no dropout / layer drop in a frozen upstream
        return self

    def forward(self, audio: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            states, frames = self.upstream.hidden_states(audio, lens)
        x = self.conv(self.featurizer(states).transpose(1, 2)).transpose(1, 2)
        return self.norm(x), (frames - 1) // 2 + 1


class FrameClassifier(torch.nn.Module):
    """Per-frame softmax at the feature frame rate over a subsampled encoder (the hybrid output).

    Each encoder frame predicts ``upsample`` consecutive 10 ms frames with one linear layer
    (D -> upsample * C), so a 4x subsampled encoder still gives 10 ms senone posteriors, as a
    3-state HMM topology needs (at 40 ms a phone could not be shorter than 120 ms).
    ``log_prior`` (set from the training alignment's class counts) turns posteriors into Kaldi's
    pseudo log-likelihoods.
    Shapes: (B, T', D), (B,) -> logits (B, T' * upsample, C), lengths (B,).
    """

    def __init__(self, idim: int, num_classes: int, upsample: int = 4) -> None:
        super().__init__()
        self.num_classes, self.upsample = num_classes, upsample
        self.linear = torch.nn.Linear(idim, upsample * num_classes)
        self.register_buffer("log_prior", torch.full((num_classes,), -math.log(num_classes)))

    def forward(
        self, enc: torch.Tensor, enc_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = enc.shape
        logits = self.linear(enc).view(b, t * self.upsample, self.num_classes)
        return logits, enc_lens * self.upsample

    def loss(
        self, logits: torch.Tensor, lens: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cross-entropy summed over frames / (batch size * upsample), i.e. per encoder frame on
        the scale of CTC's per-utterance sum; also the number of correct and of scored frames.

        ``targets`` (B, T) has one label per feature frame, -1 for padding. The encoder sees
        T' = ((T - 1) // 2 - 1) // 2 frames, so the last T - upsample * T' (3 to 6) feature frames
        have no output and are not scored.
        """
        targets = self.scored_targets(logits, lens, targets)
        ce = torch.nn.functional.cross_entropy(
            logits.reshape(-1, self.num_classes),
            targets.reshape(-1),
            ignore_index=-1,
            reduction="sum",
        )
        return (self.per_encoder_frame(ce, logits), *self.accuracy(logits, targets))

    def scored_targets(
        self, logits: torch.Tensor, lens: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """Targets cut to the outputs' frames, -1 beyond each utterance's outputs.

        An SSL front-end's last 40 ms frame can reach past the last 10 ms feature frame: up to
        ``upsample`` outputs without a target are not scored; more is an alignment error."""
        n = logits.size(1)
        if targets.size(1) < n - self.upsample:
            raise ValueError(f"{targets.size(1)} frame targets for {n} outputs")
        targets = torch.nn.functional.pad(targets, (0, max(0, n - targets.size(1))), value=-1)
        return targets[:, :n].masked_fill(~frame_mask(n, lens), -1)

    def per_encoder_frame(self, total: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """A sum over output frames / (batch size * upsample): the scale of CTC's loss."""
        return total / (logits.size(0) * self.upsample)

    @staticmethod
    def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Correct and scored frames (targets from :meth:`scored_targets`)."""
        scored = targets >= 0
        return ((logits.argmax(-1) == targets) & scored).sum(), scored.sum()

    def set_prior(self, counts: torch.Tensor, floor: float = 1.0) -> None:
        """Log prior from class counts (each floored at ``floor`` so unseen classes stay finite)."""
        counts = torch.as_tensor(counts, dtype=torch.float64).clamp(min=floor)
        self.log_prior.copy_((counts / counts.sum()).log().float())

    @torch.no_grad()
    def pseudo_log_likelihoods(
        self, enc: torch.Tensor, enc_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(senone | x) - log p(senone): (B, T' * upsample, C) and lengths."""
        logits, lens = self(enc, enc_lens)
        return logits.log_softmax(-1) - self.log_prior, lens


class AcousticModel(torch.nn.Module):
    """Shapes: feats (B, T, F), feat_lens (B,) -> CTC log-probs (B, T', V), out_lens (B,);
    senone scores (B, ~T, C) at the feature frame rate when the model has a senone head.

    ``vocab_size`` None: no CTC output (a pure hybrid model); ``num_senones`` None: no senone head.
    Loss: ``ctc_weight`` * CTC + ``senone_weight`` * frame CE (see :meth:`FrameClassifier.loss`).
    KD from an SSL teacher (:mod:`espnet_distill.kd.codebooks`): ``mvq_kd`` ({layer,
    num_codebooks, weight}) predicts the teacher's codebook indexes from encoder block ``layer``;
    ``hint_kd`` ({layer, teacher_dim, weight}) regresses the teacher layer from it. Both heads
    exist for training only: :func:`build_model` leaves them out of the model that decodes.
    """

    def __init__(
        self,
        vocab_size: int | None,
        input_size: int = 80,
        encoder: str = "conformer",
        encoder_conf: dict | None = None,
        specaug_conf: dict | None = None,
        ctc_dropout: float = 0.0,
        subsampling_conf: dict | None = None,
        num_senones: int | None = None,
        senone_upsample: int = 4,
        ctc_weight: float = 1.0,
        senone_weight: float = 1.0,
        kd_heads: dict[str, dict] | None = None,
        label_interpolation: dict | None = None,
        ssl_frontend: dict | None = None,
        mvq_kd: dict | None = None,
        hint_kd: dict | None = None,
    ) -> None:
        super().__init__()
        if vocab_size is None and num_senones is None:
            raise ValueError("an acoustic model needs a CTC output, a senone head or both")
        encoder_conf = dict(encoder_conf or {})
        num_blocks = encoder_conf.get("num_blocks", 6)
        self.kd_conf = {u: dict(c) for u, c in (kd_heads or {}).items()}
        for unit, conf in self.kd_conf.items():
            if not 1 <= conf["layer"] <= num_blocks:
                raise ValueError(
                    f"model.kd_heads.{unit}.layer must be in 1..{num_blocks} "
                    f"(encoder blocks), got {conf['layer']}"
                )
        self.mvq_conf, self.hint_conf = dict(mvq_kd or {}), dict(hint_kd or {})
        for name, conf in (("mvq_kd", self.mvq_conf), ("hint_kd", self.hint_conf)):
            if conf and not 1 <= conf["layer"] <= num_blocks:
                raise ValueError(
                    f"model.{name}.layer must be in 1..{num_blocks} (encoder blocks), "
                    f"got {conf['layer']}"
                )
        head_layers = [
            c["layer"] for c in (*self.kd_conf.values(), self.mvq_conf, self.hint_conf) if c
        ]
        # intermediate outputs of espnet2's encoder (normalised like the last one) for the heads
        inner = sorted({layer for layer in head_layers if layer < num_blocks})
        if inner:
            encoder_conf["interctc_layer_idx"] = inner
        if label_interpolation and num_senones is None:
            raise ValueError("model.label_interpolation works on the senone head (none configured)")
        self.label_interpolation = dict(label_interpolation or {})
        if encoder not in ENCODERS:
            raise ValueError(f"unknown encoder '{encoder}', expected one of {sorted(ENCODERS)}")
        self.register_buffer("cmvn_mean", torch.zeros(input_size))
        self.register_buffer("cmvn_std", torch.ones(input_size))
        self.specaug = SpecAug(**specaug_conf) if specaug_conf else None
        # Optional own front-end; then the espnet2 encoder gets input_layer=None (pos. enc. only).
        self.subsampling = None
        self.ssl_frontend = None
        if ssl_frontend:  # audio in: an SSL upstream replaces fbank + subsampling
            if subsampling_conf:
                raise ValueError(
                    "model.ssl_frontend replaces the fbank subsampling: set "
                    "model.subsampling_conf: null"
                )
            odim = encoder_conf.get("output_size", 256)
            self.ssl_frontend = SslFrontend(
                ssl_frontend["upstream"], odim, ssl_frontend.get("freeze", True)
            )
            encoder_conf["input_layer"] = None
            input_size = odim
        if subsampling_conf:
            odim = encoder_conf.get("output_size", 256)
            self.subsampling = LightConv2dSubsampling(
                input_size, odim, tuple(subsampling_conf.get("channels", (16, 32)))
            )
            encoder_conf["input_layer"] = None
            input_size = odim
        self.encoder = ENCODERS[encoder](input_size=input_size, **encoder_conf)
        self.ctc = (
            CTC(
                odim=vocab_size,
                encoder_output_size=self.encoder.output_size(),
                dropout_rate=ctc_dropout,
            )
            if vocab_size is not None
            else None
        )
        self.senone_head = (
            FrameClassifier(self.encoder.output_size(), num_senones, senone_upsample)
            if num_senones is not None
            else None
        )
        self.ctc_weight = ctc_weight if self.ctc is not None else 0.0
        self.senone_weight = senone_weight if self.senone_head is not None else 0.0
        # auxiliary outputs distilled from unit LMs (cross-modal KD), one per unit
        self.kd_heads = torch.nn.ModuleDict(
            {
                unit: FrameClassifier(
                    self.encoder.output_size(), c["num_units"], c.get("upsample", 4)
                )
                for unit, c in self.kd_conf.items()
            }
        )
        d = self.encoder.output_size()
        self.mvq_head = CodebookHead(d, self.mvq_conf["num_codebooks"]) if mvq_kd else None
        self.hint_head = HintHead(d, self.hint_conf["teacher_dim"]) if hint_kd else None

    def set_cmvn(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.cmvn_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.cmvn_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def encode(
        self, feats: torch.Tensor, feat_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) -> encoder output (B, T', D) and its lengths."""
        enc, enc_lens, _ = self.encode_layers(feats, feat_lens)
        return enc, enc_lens

    def encode_layers(
        self, feats: torch.Tensor, feat_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]]:
        """Like :meth:`encode`, plus {block index (1-based): output} of the KD heads' blocks."""
        if self.ssl_frontend is not None:  # feats: (B, S) audio, feat_lens: samples
            feats, feat_lens = self.ssl_frontend(feats, feat_lens)
        else:
            mask = frame_mask(feats.size(1), feat_lens).unsqueeze(-1)
            feats = ((feats - self.cmvn_mean) / self.cmvn_std) * mask
        if self.specaug is not None and self.training:
            feats, feat_lens = self.specaug(feats, feat_lens)
        if self.subsampling is not None:
            feats, feat_lens = self.subsampling(feats, feat_lens)
        out, enc_lens, _ = self.encoder(feats, feat_lens)
        layers: dict[int, torch.Tensor] = {}
        if isinstance(out, tuple):  # espnet2 returns (last, [(block, output), ...])
            out, inner = out
            layers = dict(inner)
        layers[len(self.encoder.encoders)] = out
        return out, enc_lens, layers

    def forward(
        self,
        feats: torch.Tensor,
        feat_lens: torch.Tensor,
        ys: torch.Tensor | None = None,
        ys_lens: torch.Tensor | None = None,
        senone_targets: torch.Tensor | None = None,
        teachers: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
        codebook_indexes: torch.Tensor | None = None,
        teacher_layer: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Losses: ``loss`` (the weighted sum), ``ctc`` (summed over each utterance, averaged over
        the batch), ``senone`` (frame CE, or label interpolation with the senone teacher),
        ``senone_correct`` / ``senone_frames`` (accuracy counts), ``kd_<unit>`` (each KD head's
        T^2 KL to its teacher, per encoder frame), ``mvq`` / ``hint`` (and ``hint_cos``) of the
        SSL-teacher heads. ``teachers``: unit -> (log-probs (B, T, V), mask (B, T)) at the 10 ms
        frame rate (:class:`~espnet_distill.kd.teacher.LmTeacher`); ``codebook_indexes``
        (B, Tt, C) and ``teacher_layer`` (B, Tt, Dt) at the teacher's 20 ms.
        An output whose labels are not given (None) is left out of the sum."""
        enc, enc_lens, layers = self.encode_layers(feats, feat_lens)
        teachers = teachers or {}
        out: dict[str, torch.Tensor] = {}
        loss = enc.new_zeros(())
        if self.ctc is not None and ys is not None:
            out["ctc"] = self.ctc(enc, enc_lens, ys, ys_lens)
            loss = loss + self.ctc_weight * out["ctc"]
        if self.senone_head is not None and senone_targets is not None:
            head = self.senone_head
            logits, lens = head(enc, enc_lens)
            if self.label_interpolation:
                if "senone" not in teachers:
                    raise ValueError("label interpolation needs the senone teacher")
                targets = head.scored_targets(logits, lens, senone_targets)
                log_probs, mask = _crop_teacher(teachers["senone"], logits.size(1), lens)
                li = self.label_interpolation
                total = label_interpolation_sum(
                    logits, targets, log_probs, mask, li["weight"], li.get("temperature", 1.0)
                )
                out["senone"] = head.per_encoder_frame(total, logits)
                out["senone_correct"], out["senone_frames"] = head.accuracy(logits, targets)
            else:
                out["senone"], out["senone_correct"], out["senone_frames"] = head.loss(
                    logits, lens, senone_targets
                )
            loss = loss + self.senone_weight * out["senone"]
        for unit, head in self.kd_heads.items():
            if unit not in teachers:
                continue
            conf = self.kd_conf[unit]
            logits, lens = head(layers[conf["layer"]], enc_lens)
            teacher, mask = _crop_teacher(teachers[unit], logits.size(1), lens)
            kd = kd_kl_sum(logits, teacher, mask, conf.get("temperature", 1.0))
            out[f"kd_{unit}"] = head.per_encoder_frame(kd, logits)
            loss = loss + conf.get("weight", 1.0) * out[f"kd_{unit}"]
        if self.mvq_head is not None and codebook_indexes is not None:
            out["mvq"] = self.mvq_head(layers[self.mvq_conf["layer"]], enc_lens, codebook_indexes)
            loss = loss + self.mvq_conf.get("weight", 0.1) * out["mvq"]
        if self.hint_head is not None and teacher_layer is not None:
            hint = self.hint_head(layers[self.hint_conf["layer"]], enc_lens, teacher_layer)
            out["hint"], out["hint_cos"] = hint
            loss = loss + self.hint_conf.get("weight", 1.0) * out["hint"]
        if not out:
            raise ValueError(
                "forward needs the labels of at least one output (ys or senone_targets)"
            )
        out["loss"] = loss
        return out

    @property
    def takes_audio(self) -> bool:
        """True when the model reads 16 kHz audio (an SSL front-end), not fbank features."""
        return self.ssl_frontend is not None

    @torch.no_grad()
    def log_probs(
        self, feats: torch.Tensor, feat_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC log-probs (B, T', V) and lengths."""
        enc, enc_lens = self._encode_for(
            self.ctc, "CTC output (a senone-only hybrid model)", feats, feat_lens
        )
        return self.ctc.log_softmax(enc), enc_lens

    @torch.no_grad()
    def senone_scores(
        self, feats: torch.Tensor, feat_lens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hybrid pseudo log-likelihoods (B, T' * upsample, num_senones) and lengths."""
        missing = "senone head (set model.senone_head in the config)"
        enc, enc_lens = self._encode_for(self.senone_head, missing, feats, feat_lens)
        return self.senone_head.pseudo_log_likelihoods(enc, enc_lens)

    def _encode_for(
        self,
        head: torch.nn.Module | None,
        missing: str,
        feats: torch.Tensor,
        feat_lens: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder output for ``head``; ValueError "this model has no <missing>" without it."""
        if head is None:
            raise ValueError(f"this model has no {missing}")
        return self.encode(feats, feat_lens)


def _crop_teacher(
    teacher: tuple[torch.Tensor, torch.Tensor], n: int, lens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher (log-probs, mask) at the feature frame rate cut to a head's ``n`` output frames
    (the last 3-6 feature frames have no output) and masked beyond each utterance's outputs."""
    log_probs, mask = teacher
    extra = max(0, n - log_probs.size(1))  # outputs past the last feature frame: no teacher
    log_probs = torch.nn.functional.pad(log_probs, (0, 0, 0, extra))
    mask = torch.nn.functional.pad(mask, (0, extra), value=False)
    return log_probs[:, :n], mask[:, :n] & frame_mask(n, lens)


def kd_heads_of(model_config: dict) -> dict[str, dict]:
    """``model.kd_heads`` without the heads an ablation config removed (``unit: null``)."""
    return {u: c for u, c in (model_config.get("kd_heads") or {}).items() if c}


SSL_KD_HEADS = ("mvq_head.", "hint_head.")  # parameters of the training-only SSL-teacher heads


def build_model(
    config: dict,
    vocab_size: int,
    num_senones: int | None = None,
    unit_sizes: dict[str, int] | None = None,
    ssl_kd_heads: bool = False,
    teacher_dim: int | None = None,
) -> AcousticModel:
    """The model of ``config["model"]``; ``unit_sizes`` (unit -> inventory size) for KD heads.
    ``ssl_kd_heads``: with the training-only heads of ``model.mvq_kd`` / ``model.hint_kd``
    (``teacher_dim``: the size of the hint's teacher layer); without them (the default) the model
    is the one that decodes and :func:`load_model` reads."""
    m = config["model"]
    head = m.get("senone_head") or {}
    ctc_weight = m.get("ctc_weight", 1.0)
    if head and num_senones is None:
        raise ValueError("model.senone_head needs the number of senones (stage-4 targets)")
    kd_heads = {}
    for unit, conf in kd_heads_of(m).items():
        if unit not in (unit_sizes or {}):
            raise ValueError(f"model.kd_heads.{unit}: the size of the {unit} inventory is unknown")
        kd_heads[unit] = {**conf, "num_units": unit_sizes[unit]}
    return AcousticModel(
        vocab_size=vocab_size if ctc_weight > 0 else None,
        input_size=m.get("input_size", 80),
        encoder=m["encoder"],
        encoder_conf=m.get("encoder_conf"),
        specaug_conf=m.get("specaug_conf"),
        subsampling_conf=m.get("subsampling_conf"),
        num_senones=num_senones if head else None,
        senone_upsample=head.get("upsample", 4),
        ctc_weight=ctc_weight,
        senone_weight=head.get("weight", 1.0),
        kd_heads=kd_heads,
        label_interpolation=m.get("label_interpolation"),
        ssl_frontend=m.get("ssl_frontend"),
        mvq_kd=m.get("mvq_kd") if ssl_kd_heads else None,
        hint_kd={**m["hint_kd"], "teacher_dim": teacher_dim}
        if ssl_kd_heads and m.get("hint_kd")
        else None,
    )


def load_model(path: Path, device: str = "cpu") -> tuple[AcousticModel, dict]:
    """The averaged model of :func:`train`, in eval mode, and its config."""
    blob = torch.load(path, map_location=device, weights_only=False)
    model = build_model(
        blob["config"], blob["vocab_size"], blob.get("num_senones"), blob.get("unit_sizes")
    )
    model.load_state_dict(blob["state_dict"])
    return model.eval().to(device), blob["config"]
