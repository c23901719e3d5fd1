"""Forward model: bent rays (synth.raytrace) and a whole simulate() of built-in scenarios."""

from __future__ import annotations

import numpy as np

from . import _common  # noqa: F401  (puts the script benchmarks on sys.path)


class SolveLink:
    """Exact bent rays on the synthetic geometries of ``forward_bench.py`` (200 samples)."""

    params = ["uhf_mutual", "x_to_earth"]
    param_names = ["case"]
    number = 1
    repeat = (3, 10, 60.0)

    def setup(self, case):
        import forward_bench as fb

        from synth.ionosphere import ChapmanLayer, NeutralAtmosphere
        from synth.refractivity import refractivity_profile

        layers = [ChapmanLayer("M2", 1.5e11, 125e3, 10e3),
                  ChapmanLayer("M1", 7e10, 105e3, 8e3)]
        if case == "uhf_mutual":
            t = fb.event_times(fb.mutual_states, np.arange(0.0, 20000.0, 1.0), 60e3, 400e3, 200)
            self.states = fb.mutual_states(t)
            self.freq, self.profile = 437.1e6, refractivity_profile(layers, 50.0, 437.1e6)
        else:
            t = fb.event_times(fb.earth_states, np.arange(0.0, 8000.0, 0.5), 40e3, 400e3, 200)
            self.states = fb.earth_states(t)
            self.freq = 8.4e9
            self.profile = refractivity_profile(layers, 60.0, 8.4e9,
                                                neutral=NeutralAtmosphere(2.1e23, 11e3))

    def time_solve_link(self, case):
        from synth.raytrace import solve_link

        solve_link(*self.states, self.freq, self.profile)

    def peakmem_solve_link(self, case):
        from synth.raytrace import solve_link

        solve_link(*self.states, self.freq, self.profile)


class Simulate:
    """``synth.observe.simulate`` of a built-in scenario (its event search cached by setup)."""

    params = ["mex-tgo-uhf", "maven-x-oneway", "mex-xs-twoway"]
    param_names = ["scenario"]
    number = 1
    repeat = (3, 10, 60.0)
    timeout = 300

    def setup(self, scenario):
        from synth.observe import simulate
        from synth.scenario import load_scenario

        self.scn = load_scenario(scenario)
        simulate(self.scn)  # kernels, orbit SPKs, the event search: once per process

    def time_simulate(self, scenario):
        from synth.observe import simulate

        simulate(self.scn)

    def peakmem_simulate(self, scenario):
        from synth.observe import simulate

        simulate(self.scn)
