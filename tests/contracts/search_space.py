"""Reusable contract suite every SearchSpace meets (Optuna's ``testing/`` style).

Subclass it in a test module and provide a ``space`` fixture (small config, fast):

    class TestMySpace(SearchSpaceContract):
        @pytest.fixture(scope="class")
        def space(self): return MySpace({...})

Supernet spaces (``has_models``) also get the weight-inheritance checks.
"""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

from search_spaces.base import Arch, ArchError, SearchSpace


def _first_dim_value_outside(space: SearchSpace) -> tuple[str, object]:
    name, dim = next(iter(space.dimensions().items()))
    bad: object = "not-a-choice"
    if all(isinstance(c, int | float) for c in dim.choices):
        bad = max(dim.choices) * 1000 + 7
    return name, bad


def _to_numpy(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    if isinstance(out, dict):
        return np.concatenate([_to_numpy(v).ravel() for _, v in sorted(out.items())])
    if isinstance(out, list | tuple):
        return np.concatenate([_to_numpy(v).ravel() for v in out])
    return np.asarray(out)


class SearchSpaceContract:
    @pytest.fixture(scope="class")
    def space(self) -> SearchSpace:  # pragma: no cover - subclasses override
        raise NotImplementedError

    def archs(self, space: SearchSpace, n: int = 3) -> list[Arch]:
        rng = np.random.default_rng(0)
        return [space.smallest(), space.largest(), *(space.sample(rng) for _ in range(n))]

    # --- the space itself -------------------------------------------------------------------
    def test_dimensions_are_well_formed(self, space: SearchSpace) -> None:
        dims = space.dimensions()
        assert dims, "a space needs at least one dimension"
        for name, dim in dims.items():
            assert isinstance(name, str) and dim.choices and dim.stage >= 1
            json.dumps(list(dim.choices))  # choices must be JSON values
        assert space.size() == int(np.prod([len(d.choices) for d in dims.values()]))

    def test_sampled_archs_validate(self, space: SearchSpace) -> None:
        for arch in self.archs(space, 10):
            assert space.validate(arch.to_dict()) == arch
            assert len(arch.key()) == 64

    def test_arch_key_is_order_independent(self, space: SearchSpace) -> None:
        arch = space.largest().to_dict()
        reversed_arch = dict(reversed(list(arch.items())))
        assert Arch(arch).key() == Arch(reversed_arch).key()

    def test_out_of_space_value_is_rejected_with_its_name(self, space: SearchSpace) -> None:
        name, bad = _first_dim_value_outside(space)
        with pytest.raises(ArchError, match=name):
            space.validate(space.largest().replace(**{name: bad}).to_dict())
        with pytest.raises(ArchError, match="unknown dimension"):
            space.validate({**space.largest().to_dict(), "no_such_dim": 1})

    def test_an_unknown_metric_fails_the_trial_naming_the_allowed_ones(self, space) -> None:
        from search_spaces.base import UnknownMetricError

        with pytest.raises(UnknownMetricError, match="no_such_metric.*allowed") as info:
            space.evaluate(space.smallest(), ["no_such_metric"])
        assert isinstance(info.value, ArchError)  # ArchError: one failed trial, not the study

    def test_encoding_round_trips(self, space: SearchSpace) -> None:
        encodings = []
        for arch in self.archs(space, 10):
            vec = space.encode(arch)
            assert vec.ndim == 1 and np.all(np.isfinite(vec))
            assert space.decode(vec) == arch
            encodings.append(vec)
        assert len({v.shape for v in encodings}) == 1

    # --- supernet spaces -----------------------------------------------------------------------
    @pytest.fixture
    def models_only(self, space: SearchSpace) -> None:
        if not space.has_models:
            pytest.skip(f"{space.name} has no models")

    def test_largest_subnet_reproduces_the_supernet(self, space, models_only) -> None:
        import torch

        arch = space.largest()
        x = space.example_input(arch)
        with torch.inference_mode():
            expected = _to_numpy(space.supernet_forward(arch, x))
            got = _to_numpy(space.extract(arch).eval()(x))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)

    def test_sampled_subnets_match_the_supernet_slices(self, space, models_only) -> None:
        import torch

        for arch in self.archs(space, 2):
            x = space.example_input(arch)
            with torch.inference_mode():
                expected = _to_numpy(space.supernet_forward(arch, x))
                got = _to_numpy(space.extract(arch).eval()(x))
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)

    def test_smallest_subnet_runs_and_is_cheaper(self, space, models_only) -> None:
        import torch

        small, large = space.smallest(), space.largest()
        with torch.inference_mode():
            out = _to_numpy(space.extract(small).eval()(space.example_input(small)))
        assert np.all(np.isfinite(out))
        c_small, c_large = space.cost(small), space.cost(large)
        for metric in ("macs", "params", "params_bytes", "peak_activation_bytes"):
            assert 0 < c_small[metric] <= c_large[metric], metric
        assert c_small["params"] < c_large["params"]

    def test_extracted_module_holds_no_reference_to_the_supernet(self, space, models_only) -> None:
        import torch

        arch = space.largest()
        sub = space.extract(arch)
        net = space.supernet_module()
        super_ptrs = {t.untyped_storage().data_ptr() for t in [*net.parameters(), *net.buffers()]}
        for name, t in list(sub.state_dict().items()):
            assert t.untyped_storage().data_ptr() not in super_ptrs, f"{name} shares storage"
        referrers = {id(m) for m in net.modules()}
        for module in sub.modules():
            for value in vars(module).values():
                assert id(value) not in referrers
        with torch.no_grad():
            for p in sub.parameters():
                p.add_(1.0)  # mutating the subnet must not touch the supernet
        x = space.example_input(arch)
        with torch.inference_mode():
            again = _to_numpy(space.extract(arch).eval()(x))
            ref = _to_numpy(space.supernet_forward(arch, x))
        np.testing.assert_allclose(again, ref, rtol=1e-4, atol=1e-5)
        del sub
        gc.collect()

    def test_state_dict_loads_into_a_fresh_static_model(self, space, models_only) -> None:
        import torch

        for arch in self.archs(space, 1):
            sub = space.extract(arch).eval()
            fresh = space.build_static(arch)
            fresh.load_state_dict(sub.state_dict(), strict=True)
            fresh.eval()
            x = space.example_input(arch)
            with torch.inference_mode():
                np.testing.assert_allclose(_to_numpy(fresh(x)), _to_numpy(sub(x)), rtol=1e-5)

    def test_reordering_leaves_the_supernet_function_unchanged(self, space, models_only) -> None:
        import torch

        arch = space.largest()
        x = space.example_input(arch)
        with torch.inference_mode():
            before = _to_numpy(space.supernet_forward(arch, x))
        space.reorder_by_importance()
        with torch.inference_mode():
            after = _to_numpy(space.supernet_forward(arch, x))
        np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)

    def test_costs_are_reported(self, space, models_only) -> None:
        costs = space.cost(space.largest())
        assert set(space.cost_metrics()) <= set(costs)
