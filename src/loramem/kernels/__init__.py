"""CPU speed: compiled kernels, built once per machine and optional (every caller has a torch fallback),
and the OpenMP worker pools torch's ops run on."""
