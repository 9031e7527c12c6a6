"""The paper's experiments: grids, runner, result store, reports and figures."""
