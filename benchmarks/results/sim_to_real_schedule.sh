# Session 4: sim_to_real.py rerun with the current defaults (the late op-entropy schedule) into a
# fresh folder; the constant-0.2 results stay in results/sim_to_real/. Two lanes, one thread each.
OUT=benchmarks/results/sim_to_real_schedule
git log -1 --format="code: %H"
run() { OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sim_to_real.py --seeds 2 --out $OUT "$@"; }
run --parts surrogate > /work/logs/s2r_a.log 2>&1 &
sleep 60; run --parts host > /work/logs/s2r_b.log 2>&1 &
wait
