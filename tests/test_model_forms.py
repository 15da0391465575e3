"""The forms a model is shipped in count like the eager model, with the same layer names:
TorchScript (scripted, traced), ``torch.export`` programs (``ep.module()``) and
``torch.compile``d modules."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pytest_flopbudget import profile
from pytest_flopbudget.counting.script_scopes import ScriptScopes, module_chain

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.Hardswish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(2):
            x = x + 1
        return self.act(self.bn(self.conv(x))) * 2


def net() -> nn.Module:
    return nn.Sequential(Block(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()


X = torch.randn(1, 3, 8, 8)


def rows(p):  # type: ignore[no-untyped-def]
    return [(r.name, r.kind, r.flops, r.macs, r.params) for r in p.layers]


def test_eager_rows_by_hand():
    p = profile(net(), X)
    assert rows(p) == [
        ("", "Sequential", 0, 0, 0),
        # two adds of 192 elements, the * 2 of 8 x 6 x 6 = 288 outputs
        ("0", "Block", 2 * 192 + 288, 0, 0),
        # 288 outputs * 3 * 9 = 7,776 MACs, 288 bias adds
        ("0.conv", "Conv2d", 2 * 7_776 + 288, 7_776, 224),
        ("0.bn", "BatchNorm2d", 4 * 288, 0, 16),  # eval: normalise 2, weight 1, bias 1
        ("0.act", "Hardswish", 5 * 288, 0, 0),
        ("1", "AdaptiveAvgPool2d", 288, 0, 0),  # one window of 36 per channel
        ("2", "Flatten", 0, 0, 0),
        ("3", "Linear", 2 * 32 + 4, 32, 36),
    ]


@pytest.mark.parametrize("form", ["script", "trace"])
def test_torchscript_rows_are_the_submodules_the_graph_names(form):
    model = net()
    scripted = torch.jit.script(model) if form == "script" else torch.jit.trace(model, X)
    p = profile(scripted, X)
    assert rows(p) == rows(profile(model, X))
    assert (p.model, p.notes, p.traced, p.unsupported) == ("Sequential", (), "fake", {})
    # a scripted submodule is a ScriptObject too, but its weights are parameters: all seen
    assert (p.hidden_weights, p.params) == ({}, 224 + 16 + 36)
    assert p.layer("0").macs == 7_776


class Ignored(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    # runs in Python, outside the graph (unannotated: TorchScript cannot resolve an ignored
    # method's string annotations, and takes a Tensor)
    @torch.jit.ignore
    def extra(self, x):  # type: ignore[no-untyped-def]
        return x.sin()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extra(self.fc(x))


def test_a_scripted_model_charges_what_its_graph_does_not_name_to_the_root_with_a_note():
    p = profile(torch.jit.script(Ignored().eval()), torch.randn(2, 4))
    # fc: 2 rows * 4 * 4 = 32 MACs, 8 bias adds; the ignored sin: 8, on the model's row
    assert (p.traced, p.unsupported, p.macs, p.flops) == ("fake", {}, 32, 2 * 32 + 8 + 8)
    assert (p.layer("fc").flops, p.layer("fc").params, p.params) == (72, 20, 20)
    assert [r.op for r in p.records if r.module == ""] == ["aten.sin"]
    assert p.notes == ("1 operator call(s) not named by the model's graph (aten::sin x1) "
                       "are charged to the model's own row",)
    assert "note: 1 operator call(s) not named" in str(p)


class ReadsValue(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * int(x.sum())


def test_a_scripted_model_that_reads_a_tensor_value_says_so_when_it_runs_for_real():
    # the TorchScript interpreter re-raises the fake tensor's complaint as a bare
    # RuntimeError; the reason is the operator's own
    p = profile(torch.jit.script(ReadsValue()), torch.ones(3))
    assert p.traced == "real"
    assert p.fallback_reason.startswith("the forward reads tensor values")
    assert p.flops == 3 + 3  # the sum and the multiply, 3 elements each


class Halves(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape
        return x.view(b, 2, c // 2).sum(1)


def test_a_traced_model_doing_size_arithmetic_stays_fake():
    # traced, c // 2 is a tensor made from the size (NumToTensor), divided and read back
    # with int(): a constant of the trace, so no real forward is needed
    x = torch.randn(3, 8)
    p = profile(torch.jit.trace(Halves(), x), x)
    assert (p.traced, p.notes) == ("fake", ())
    # the sum over dim 1 of 3 x 2 x 4: 24 input elements, 1 each; the size's floor_divide:
    # div and floor, 2
    assert p.flops == 24 + 2


def test_operators_the_graph_does_not_name_go_to_the_root_with_a_note():
    scopes = ScriptScopes([("aten::conv2d", (("0", "Conv2d"),)), ("aten::relu", ()),
                           ("aten::linear", (("1", "Linear"),))])
    assert scopes.match("aten::conv2d") == "0"
    assert scopes.match("aten::linear") == "1"
    assert scopes.match("aten::conv2d") == "0"  # a loop: searched again from the start
    assert scopes.match("aten::relu") == ""  # the model's own code
    assert scopes.match("aten::sin") == ""  # not in the graph: the root, noted
    assert scopes.kinds == {"0": "Conv2d", "1": "Linear"}
    assert scopes.note() == ("1 operator call(s) not named by the model's graph (aten::sin "
                             "x1) are charged to the model's own row")


def test_module_chain_of_a_graph_node():
    assert module_chain("features(Sequential).0(Conv2d).SELF(Conv2d)") == (
        ("features", "Sequential"), ("features.0", "Conv2d"))
    assert module_chain("0(Blk).bn(BatchNorm2d).UNKNOWN_INSTANCE(UNKNOWN_TYPE)") == (
        ("0", "Blk"), ("0.bn", "BatchNorm2d"))
    assert module_chain("") == module_chain(".UNKNOWN_INSTANCE(UNKNOWN_TYPE)") == ()
    # a method of the module (SELF) still calls the module's own submodules
    assert module_chain("0(Blk).SELF(Blk).bn(BatchNorm2d).UNKNOWN_INSTANCE(UNKNOWN_TYPE)") \
        == (("0", "Blk"), ("0.bn", "BatchNorm2d"))
    # a ModuleList element called in a loop is named by its index alone: placed one
    # container down where one module of that class fits; the chain stops where several
    # do; a name nothing fits is kept (a frozen model has no submodules left)
    modules = {"layers": "ModuleList", "layers.0": "Layer", "layers.0.fc": "Linear",
               "a": "ModuleList", "a.0": "Linear", "b": "ModuleList", "b.0": "Linear"}
    assert module_chain("0(Layer).SELF(Layer).fc(Linear)", modules) == (
        ("layers.0", "Layer"), ("layers.0.fc", "Linear"))
    assert module_chain("0(Linear)", modules) == ()
    assert module_chain("1(Layer)", modules) == module_chain("1(Layer)", {}) == (
        ("1", "Layer"),)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.inner(x)

    def inner(self, x: torch.Tensor) -> torch.Tensor:  # a method calling submodules
        return self.act(self.fc(x))


class Stack(nn.Module):
    """A stem, a ModuleList of blocks run in a loop (as transformer layers are), a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 8)
        self.blocks = nn.ModuleList([Residual(), Residual()])
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


@pytest.mark.parametrize("form", ["script", "trace"])
def test_torchscript_modulelist_loops_and_methods_keep_the_eager_names(form):
    model, x = Stack().eval(), torch.randn(2, 4)
    scripted = torch.jit.script(model) if form == "script" else torch.jit.trace(model, x)
    p = profile(scripted, x)
    assert rows(p) == rows(profile(model, x))
    assert p.notes == ()
    # each block's fc: 2 rows * 8 * 8 = 128 MACs, 16 bias adds; its relu 16; its add 16
    assert [(r.name, r.flops) for r in p.layers if r.name.startswith("blocks.1")] == [
        ("blocks.1", 16), ("blocks.1.fc", 2 * 128 + 16), ("blocks.1.act", 16)]


class TwoLists(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.ModuleList([nn.Linear(4, 4)])
        self.b = nn.ModuleList([nn.Linear(4, 4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.a:
            x = m(x)
        for m in self.b:
            x = m(x)
        return x


def test_a_graph_name_that_fits_several_modules_goes_to_the_module_around_it_with_a_note():
    p = profile(torch.jit.script(TwoLists().eval()), torch.randn(2, 4))
    # "0(Linear)" is a.0 or b.0: both linears (2 * 4 * 4 = 32 MACs, 8 bias adds each) are
    # charged to the model's row, and the profile says so
    assert [(r.name, r.flops, r.params) for r in p.layers] == [
        ("", 2 * (64 + 8), 0), ("a.0", 0, 20), ("b.0", 0, 20)]
    assert p.notes == ("2 operator call(s) in modules the graph names by an index that fits "
                       "several of the model's modules (0(Linear) x2) are charged to the "
                       "module around them",)


def test_an_exported_program_counts_with_the_eager_layer_names():
    model = net()
    ep = torch.export.export(model, (X,))
    p = profile(ep.module(), X)
    assert rows(p)[1:] == rows(profile(model, X))[1:]
    assert (p.traced, p.unsupported, p.notes) == ("fake", {}, ())
    assert p.layer("0").macs == 7_776


def test_a_compiled_module_counts_as_the_eager_one():
    model = net()
    p = profile(torch.compile(model), X)
    assert rows(p) == rows(profile(model, X))
    assert p.model == "Sequential"


def test_a_scripted_model_is_left_as_it_was():
    scripted = torch.jit.script(net())
    before = {k: v.clone() for k, v in scripted.state_dict().items()}
    profile(scripted.train(), X)
    assert all(torch.equal(before[k], v) for k, v in scripted.state_dict().items())


def test_a_frozen_torchscript_model_counts_its_graph_constants_as_params():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 6 * 6, 4)).eval()
    frozen = torch.jit.freeze(torch.jit.script(model))
    p = profile(frozen, X)
    # conv 6*6 * 8 * 27 = 7,776 MACs; linear 288 * 4 = 1,152
    assert (p.macs, p.unsupported) == (7_776 + 1_152, {})
    # freezing folds the BN into the conv: conv 216 + 8 bias, linear 1,152 + 4; never 0
    assert p.params == 216 + 8 + 1_152 + 4
    assert any("tensor constants in its TorchScript graph" in n for n in p.notes)
    assert p.layer("0").macs == 7_776


def test_a_frozen_lstm_counts_its_list_of_weights():
    # torch.jit.freeze keeps an LSTM's flat weights as one List[Tensor] constant:
    # LSTM(4, 3): 4 gates x 3 x (4 + 3) weights + 2 x 4 x 3 biases = 84 + 24 = 108
    frozen = torch.jit.freeze(torch.jit.script(nn.Sequential(nn.LSTM(4, 3)).eval()))
    assert profile(frozen, torch.randn(5, 2, 4)).params == 108


class _Attend(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.att = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, _ = self.att(x, x, x, need_weights=False)
        return self.head(a.mean(1))


def test_a_frozen_model_counts_the_weights_of_submodules_it_keeps_as_objects():
    # freeze keeps the attention as an object whose in_proj_weight (24 x 8) and in_proj_bias
    # (24) stay its attributes: 216; out_proj 8 x 8 + 8 = 72; head 8 x 3 + 3 = 27: 315
    torch.manual_seed(0)
    frozen = torch.jit.freeze(torch.jit.script(_Attend().eval()))
    p = profile(frozen, torch.randn(2, 5, 8))
    assert p.params == 216 + 72 + 27
    assert any("2 tensor attributes of submodules it keeps as objects" in n for n in p.notes)


def test_a_frozen_model_is_traced_on_fake_tensors_the_same_every_time():
    # TorchScript's optimising executor ran aten::equal on a frozen model's constants at
    # its first calls, inside the count, and read their values (a real run): the graph
    # runs as written instead. Linear(4, 3) on 1 x 4: reads 4 + 12 + 3, writes 3 floats:
    # 22 x 4 = 88 bytes
    frozen = torch.jit.freeze(torch.jit.script(nn.Sequential(nn.Linear(4, 3)).eval()))
    x = torch.randn(1, 4)
    first, second = profile(frozen, x), profile(frozen, x)
    assert (first.bytes, second.bytes, first.traced, second.traced) == (88, 88, "fake", "fake")
    assert not [n for n in first.notes if "aten::equal" in n]


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # tracing MHA's shape checks
def test_a_traced_attention_profiles_without_warm_up_calls():
    # torch.jit.trace of nn.MultiheadAttention failed in aten::item before the module had
    # run twice (the optimising executor's first calls); its MACs are the eager model's:
    # in-projection 10 x 8 x 24 = 1,920, scores and values 2 x 2 heads x 2 x 5 x 5 x 4 = 800,
    # out-projection 10 x 8 x 8 = 640: 3,360
    class Attend(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.att = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, y: torch.Tensor) -> torch.Tensor:
            return self.att(y, y, y, need_weights=False)[0]

    torch.manual_seed(0)
    model = Attend().eval()
    traced = torch.jit.trace(model, torch.randn(2, 5, 8), check_trace=False)
    p = profile(traced, torch.randn(2, 5, 8))
    assert (p.macs, p.traced) == (3_360, "fake")


class _Either(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.flag = True
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flag:  # noqa: SIM108 - an if statement, as scripted models write it
            y = self.a(x)
        else:
            y = torch.relu(self.b(x))
        return y


class _Around(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.sub = _Either()
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.sub(x)))


def test_a_scripted_branch_not_taken_takes_no_operator():
    # the relu after sub ran the 'if' branch is the model's own (2 x 8 = 16 FLOPs), not the
    # relu of the 'else' branch, which did not run; sub.a: 2 x (2 x 8 x 8) + 16 bias = 272
    model = _Around().eval()
    p = profile(torch.jit.script(model), torch.randn(2, 8))
    assert {r.name: r.flops for r in p.layers} == {"": 16, "sub": 0, "sub.a": 272,
                                                     "head": 102, "sub.b": 0}


class _Alternating(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(2):
            if i == 0:  # noqa: SIM108 - an if statement, as scripted models write it
                x = self.a(x)
            else:
                x = self.b(x)
        return self.head(x)


def test_a_scripted_if_in_a_loop_may_take_either_branch():
    # iteration 0 runs a, iteration 1 runs b: each 2 x (2 x 8 x 8) + 16 = 272 FLOPs; head
    # 2 x (2 x 8 x 3) + 6 = 102, as eager
    p = profile(torch.jit.script(_Alternating().eval()), torch.randn(2, 8))
    assert {r.name: r.flops for r in p.layers} == {"": 0, "a": 272, "b": 272, "head": 102}


class _Positions(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("pe", torch.randn(100, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[: x.size(1)]


def test_a_scripted_or_traced_model_with_only_a_buffer_has_no_params():
    # a buffer is no parameter, in a scripted or traced model as in the eager one (only a
    # frozen model's kept objects hold weights as plain attributes)
    model = _Positions().eval()
    x = torch.randn(2, 10, 8)
    for form in (torch.jit.script(model), torch.jit.trace(model, x)):
        p = profile(form, x)
        assert (p.params, p.weight_bytes) == (0, 0)
