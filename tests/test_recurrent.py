"""RNN, LSTM and GRU: MACs and elementwise work per step, derived by hand.

Per step and batch row (see ops/recurrent.py): MACs G*H*(I + R) (+ R*H with proj_size);
elementwise LSTM 22H (+8H biases), GRU 16H (+6H), RNN 2H (+2H).
"""

from __future__ import annotations

import pytest
import torch
from reference_models import VibrationClassifier
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from pytest_flopbudget import profile
from pytest_flopbudget.counting.tracer import trace
from pytest_flopbudget.devices.device import Device


def test_single_layer_lstm():
    # T=5, B=2, I=8, H=16: MACs = 10 rows * 4*16*(8 + 16) = 15,360
    # elementwise = 10 rows * (22 + 8) * 16 = 4,800
    p = profile(nn.LSTM(8, 16), torch.randn(5, 2, 8))
    assert p.macs == 15_360
    assert p.flops == 2 * 15_360 + 4_800


def test_two_layer_bidirectional_lstm_batch_first():
    # layer 0 (I=8) both directions: 2 * 10 * 4*16*(8+16) = 30,720
    # layer 1 reads both directions (I=2H=32):  2 * 10 * 4*16*(32+16) = 61,440
    # elementwise: 4 stages * 10 rows * 30 * 16 = 19,200
    p = profile(nn.LSTM(8, 16, num_layers=2, bidirectional=True, batch_first=True),
                torch.randn(2, 5, 8))
    assert p.macs == 92_160
    assert p.flops == 2 * 92_160 + 19_200
    stages = [r.label for r in p.records if r.op == "aten.lstm"]
    assert stages == ["layer 0", "layer 0 reverse", "layer 1", "layer 1 reverse"]


def test_lstm_with_projection():
    # H=16, proj_size R=4: W_hh is 4H x R, plus the projection R x H per step.
    # MACs per row = 4*16*(8 + 4) + 4*16 = 768 + 64 = 832; 10 rows -> 8,320
    # elementwise: 10 * 30 * 16 = 4,800
    p = profile(nn.LSTM(8, 16, proj_size=4), torch.randn(5, 2, 8))
    assert p.macs == 8_320
    assert p.flops == 2 * 8_320 + 4_800
    assert p.layers[0].output_shapes == [(5, 2, 4), (1, 2, 4), (1, 2, 16)]


def test_gru_and_rnn():
    # GRU: 10 rows * 3*16*(8+16) = 11,520 MACs; elementwise 10 * (16 + 6) * 16 = 3,520
    p = profile(nn.GRU(8, 16), torch.randn(5, 2, 8))
    assert (p.macs, p.flops) == (11_520, 23_040 + 3_520)
    # GRU without bias: 10 * 16 * 16 = 2,560 elementwise
    p = profile(nn.GRU(8, 16, bias=False), torch.randn(5, 2, 8))
    assert (p.macs, p.flops) == (11_520, 23_040 + 2_560)
    # RNN tanh: 10 rows * 16*(8+16) = 3,840 MACs; elementwise 10 * (2 + 2) * 16 = 640
    for nonlinearity in ("tanh", "relu"):
        p = profile(nn.RNN(8, 16, nonlinearity=nonlinearity), torch.randn(5, 2, 8))
        assert (p.macs, p.flops) == (3_840, 7_680 + 640)


def test_unbatched_sequence():
    # (T=6, I=4) without batch: 6 rows * 4*8*(4+8) = 2,304 MACs
    assert profile(nn.LSTM(4, 8), torch.randn(6, 4)).macs == 2_304


def test_cells():
    # one step, 3 rows: LSTMCell 3 * 4*16*(8+16) = 4,608 MACs, 3 * 30 * 16 = 1,440 elementwise
    p = profile(nn.LSTMCell(8, 16), torch.randn(3, 8))
    assert (p.macs, p.flops) == (4_608, 9_216 + 1_440)
    # GRUCell: 3 * 3*16*24 = 3,456 MACs; 3 * 22 * 16 = 1,056
    p = profile(nn.GRUCell(8, 16), torch.randn(3, 8))
    assert (p.macs, p.flops) == (3_456, 6_912 + 1_056)


def test_seed000_bilstm_alone():
    # 2 directions x 128 steps x 4 x 128 x (128 + 128) = 33,554,432 MACs
    p = profile(VibrationClassifier().eval(), torch.randn(1, 1, 1024))
    assert p.layer("lstm").macs == 2 * 128 * 4 * 128 * (128 + 128) == 33_554_432
    assert p.layer("lstm").input_shapes == [(1, 128, 128)]


def test_recurrent_weights_are_step_reads():
    # the recurrent weights W_hh (64 x 16) and b_hh (64) are re-read every step (roofline)
    p = profile(nn.LSTM(8, 16), torch.randn(5, 2, 8))
    [stage] = [r for r in p.records if r.op == "aten.lstm"]
    assert stage.steps == 5
    assert stage.step_read.bytes() == 4 * (64 * 16 + 64)


def test_whole_layers_record_their_input_projection():
    # GRU(40, 128) x 2 layers over T=100, B=1: 100 rows. The input projection of layer 0 is
    # rows * 3H * I = 100 * 384 * 40 = 1,536,000 MACs, of layer 1 (I = H = 128)
    # 100 * 384 * 128 = 4,915,200; each is part of its stage's MACs (100 * 384 * (I + 128))
    p = profile(nn.GRU(40, 128, 2, batch_first=True), torch.randn(1, 100, 40))
    stages = [r for r in p.records if r.op == "aten.gru"]
    assert [r.input_macs for r in stages] == [1_536_000, 4_915_200]
    assert [r.macs for r in stages] == [100 * 384 * 168, 100 * 384 * 256]
    # LSTM(8, 16) with proj_size 4 over T=5, B=2: 10 rows * 4H * I = 10 * 64 * 8 = 5,120
    [lstm] = [r for r in profile(nn.LSTM(8, 16, proj_size=4), torch.randn(5, 2, 8)).records
              if r.op == "aten.lstm"]
    assert lstm.input_macs == 5_120


@pytest.mark.parametrize("fusion", ["none", "epilogue", "onnxruntime"])
def test_split_projections_keep_every_flop(fusion):
    # a 2-layer bidirectional LSTM(8, 16) over T=5, B=2: 4 stages, so 4 projections run
    # before their steps; the kernels' FLOPs add up to the count, 2 * 92,160 + 19,200
    # (test_two_layer_bidirectional_lstm_batch_first), whatever the runtime fuses
    p = profile(nn.LSTM(8, 16, num_layers=2, bidirectional=True), torch.randn(5, 2, 8))
    device = Device("d", 1e9, 1e9, fusion=fusion, batched_input_projection=True)
    ops = p.latency(device).ops
    assert sum(t.flops for t in ops) == p.flops == 2 * 92_160 + 19_200
    # layer 0 projects I=8 (10 rows * 64 * 8 = 5,120 MACs), layer 1 I=32 (20,480)
    assert [t.flops for t in ops if t.op == "aten.lstm.input_projection"] == [
        10_240, 10_240, 40_960, 40_960]


def test_a_cell_records_no_input_projection():
    # one step: nothing runs ahead of the steps (its 3,456 MACs stay the cell's)
    [cell] = [r for r in profile(nn.GRUCell(8, 16), torch.randn(3, 8)).records
              if r.op == "aten.gru_cell"]
    assert (cell.macs, cell.input_macs) == (3_456, 0)


def totals(t):
    return sum(r.macs for r in t.records), sum(r.flops for r in t.records)


CASES = {
    "lstm 2-layer bidirectional": (nn.LSTM(8, 16, 2, bidirectional=True), (5, 2, 8)),
    "lstm proj": (nn.LSTM(8, 16, proj_size=4), (5, 2, 8)),
    "gru batch_first": (nn.GRU(8, 16, 2, batch_first=True, bidirectional=True), (2, 5, 8)),
    "gru no bias": (nn.GRU(8, 16, bias=False), (5, 2, 8)),
    "rnn relu": (nn.RNN(8, 16, nonlinearity="relu"), (5, 2, 8)),
    "lstm cell": (nn.LSTMCell(8, 16), (3, 8)),
    "gru cell": (nn.GRUCell(8, 16), (3, 8)),
}


@pytest.mark.parametrize("name", CASES)
def test_fused_kernels_count_the_same_as_the_math(name):
    # Inference sees the whole op (aten.lstm) or oneDNN's fused layer (mkldnn_rnn_layer on
    # CPU); with autograd on, GRU and RNN unroll into addmm/sigmoid/tanh per step. The
    # canonical formulas follow ATen's cell math, so every path counts the same.
    model, shape = CASES[name]
    x = torch.randn(*shape)
    fused, math_path = trace(model, (x,)), trace(model, (x,), grad=True)
    assert totals(fused) == totals(math_path)
    assert dict(fused.unsupported) == dict(math_path.unsupported) == {}


def test_batch_first_lstm_steps_along_time_on_every_path():
    # LSTM(4, 4, batch_first=True) on a batch of 2 sequences of 5 steps. Inference sees
    # aten.lstm (batch-major input); with autograd on CPU, oneDNN's mkldnn_rnn_layer gets a
    # time-major input. Both: 5 steps; reads x 2*5*4 = 40 + W_ih 16*4 = 64 + W_hh 64 +
    # biases 2*16 + h0 2*4 + c0 8 = 216 floats = 864 B; writes out 40 + hn 8 + cn 8 = 56 floats
    model, x = nn.LSTM(4, 4, batch_first=True), torch.randn(2, 5, 4)
    [fused] = [r for r in trace(model, (x,), grad=True).records if r.op == "aten.mkldnn_rnn_layer"]
    [whole] = [r for r in trace(model, (x,)).records if r.op == "aten.lstm"]
    for r in (fused, whole):
        assert (r.steps, r.read.bytes(), r.written.bytes()) == (5, 864, 224)
    [backward] = [r for r in profile(model, x, train=True).phase("backward").records
                  if r.op == "aten.mkldnn_rnn_layer_backward"]
    assert backward.steps == 5


def test_meta_device_lstm_counts_the_same():
    # on the meta device there is no oneDNN kernel; the count does not change
    with torch.device("meta"):
        meta = nn.LSTM(8, 16, 2, bidirectional=True)
    real = nn.LSTM(8, 16, 2, bidirectional=True)
    x = torch.randn(5, 2, 8)
    assert profile(meta, x).flops == profile(real, x).flops


def test_packed_sequence_counts_the_real_rows():
    # lengths 5, 3, 2: 10 rows in total (not 3 * 5 = 15); MACs = 10 * 4*16*(8+16) = 15,360
    lstm = nn.LSTM(8, 16)

    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = lstm

        def forward(self, x):
            packed = nn.utils.rnn.pack_padded_sequence(x, [5, 3, 2])
            out, _ = self.lstm(packed)
            return out.data

    p = profile(Packed(), torch.randn(5, 3, 8))
    assert p.layer("lstm").macs == 15_360
    assert (p.traced, p.unsupported) == ("fake", {})  # the lengths are a list: known


class PackedBiLSTM(nn.Module):
    """Unsorted lengths from the caller, packed, a bidirectional LSTM, unpacked."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, bidirectional=True, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        return pad_packed_sequence(out, batch_first=True)[0]


LENGTHS = torch.tensor([2, 5, 3])
XP = torch.randn(3, 5, 8)


@pytest.mark.parametrize("how", ["auto", "real"])
def test_a_packed_lstm_counts_only_the_sequences_still_running(how):
    p = profile(PackedBiLSTM(), XP, LENGTHS, trace=how)
    assert (p.traced, p.unsupported) == ("fake" if how == "auto" else "real", {})
    # lengths 5, 3, 2 (sorted): steps 0..4 run 3, 3, 2, 1, 1 sequences = 10 rows, not
    # 3 * 5 = 15. Per row and direction 4*16*(8 + 16) = 1,536 MACs and (22 + 8) * 16 = 480
    # elementwise: 2 directions * 10 rows -> 30,720 MACs, 9,600 elementwise
    lstm = p.layer("lstm")
    assert (lstm.macs, lstm.flops) == (30_720, 2 * 30_720 + 9_600)
    assert p.macs == 30_720
    # per direction: reads the 10 packed rows (80 floats), h0 and c0 for the 3 sequences
    # (2 * 48), W_ih 512, W_hh 1,024, biases 128 = 1,840 floats; writes 10 rows of 16 and
    # the final h and c (96): 256 floats
    [stage, reverse] = [r for r in p.records if r.op == "aten.lstm"]
    for r in (stage, reverse):
        assert (r.steps, r.read.bytes(), r.written.bytes()) == (5, 4 * 1_840, 4 * 256)


def test_pack_padded_sequence_moves_the_rows_it_packs():
    # reads the 10 rows it packs (80 floats = 320 B) and 3 int64 lengths (24 B); writes
    # them (320 B) and 5 int64 batch sizes (40 B); 0 FLOPs
    p = profile(PackedBiLSTM(), XP, LENGTHS)
    [pack] = [r for r in p.records if r.op == "aten._pack_padded_sequence"]
    assert (pack.flops, pack.read.bytes(), pack.written.bytes()) == (0, 344, 360)


def test_pad_packed_sequence_writes_the_padded_tensor():
    # reads the LSTM's 10 packed rows of 2 * 16 (320 floats = 1,280 B) and 5 int64 batch
    # sizes (40 B); writes 3 x 5 x 32 = 480 floats (1,920 B, padding included) and 3 int64
    # lengths (24 B); 0 FLOPs
    p = profile(PackedBiLSTM(), XP, LENGTHS)
    [pad] = [r for r in p.records if r.op == "aten._pad_packed_sequence"]
    assert (pad.flops, pad.read.bytes(), pad.written.bytes()) == (0, 1_320, 1_944)


def test_a_packed_gru_on_fake_tensors():
    # lengths 3, 1: steps run 2, 1, 1 sequences = 4 rows; 3*8*(4 + 8) = 288 MACs per row:
    # 1,152; elementwise (16 + 6) * 8 = 176 per row: 704
    class PackedGRU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(4, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gru(pack_padded_sequence(x, [3, 1]))[1]

    p = profile(PackedGRU(), torch.randn(3, 2, 4))
    assert (p.traced, p.unsupported, p.macs, p.flops) == ("fake", {}, 1_152, 2 * 1_152 + 704)


class PackedProjected(nn.Module):
    """Two layers with proj_size, packed from unsorted lengths, unpacked to 7 steps."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(6, 10, num_layers=2, proj_size=4)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, (h, c) = self.lstm(pack_padded_sequence(x, lengths, enforce_sorted=False))
        return pad_packed_sequence(out, total_length=7)[0], h, c


def test_a_packed_lstm_with_projections_counts_the_same_fake_and_real():
    # lengths 3, 7, 1, 5: 16 packed rows. Per row, layer 0: 4*10*(6 + 4) + 4*10 (projection)
    # = 440; layer 1 (input 4): 4*10*(4 + 4) + 40 = 360: 16 * 800 = 12,800 MACs
    x, lengths = torch.randn(7, 4, 6), torch.tensor([3, 7, 1, 5])
    fake = profile(PackedProjected(), x, lengths)
    real = profile(PackedProjected(), x, lengths, trace="real")
    assert (fake.traced, real.traced, fake.unsupported) == ("fake", "real", {})
    assert fake.macs == real.macs == 16 * (440 + 360) == 12_800
    assert (fake.flops, fake.bytes) == (real.flops, real.bytes)
    # the outputs: 7 steps x 4 sequences x 4 (proj_size); h (2, 4, 4), c (2, 4, 10)
    assert fake.calls[""].output_shapes == [(7, 4, 4), (2, 4, 4), (2, 4, 10)]


def test_a_packed_lstm_in_a_training_step_runs_for_real_and_says_why():
    # with autograd on, the LSTM reaches the counter decomposed: its kernel reads the batch
    # sizes from a fake tensor's memory, which it cannot. Forward: 30,720 MACs as above
    p = profile(PackedBiLSTM(), XP, LENGTHS, train=True)
    assert p.traced == "real"
    assert "a recurrent layer over a packed sequence with autograd on" in p.fallback_reason
    assert p.phase("forward").macs == 30_720


def test_lengths_computed_from_float_data_need_a_real_forward_that_says_why():
    # the lengths come from the input's values (non-zero steps): no fake trace can know
    # them, so the forward runs for real, and says which kernel needed them. Each of the
    # 3 sequences here is all non-zero: lengths 5, 5, 5 -> 15 rows * 1,536 * 2 directions
    class FromData(PackedBiLSTM):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
            lengths = (x.abs().sum(-1) > 0).sum(1)
            return super().forward(x, lengths)

    p = profile(FromData(), XP.abs() + 1)
    assert p.traced == "real"
    assert p.fallback_reason.startswith("aten._pack_padded_sequence.default needs the values "
                                        "of its lengths")
    assert p.macs == 15 * 1_536 * 2
