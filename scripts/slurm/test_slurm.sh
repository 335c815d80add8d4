#!/usr/bin/env bash
# A real Slurm job array on this machine: starts munge, slurmctld and slurmd
# (Debian's slurm-wlm packages) on localhost with a throw-away configuration,
# submits a tiny sweep as a 2-task array with scripts/slurm/neurn_array.sbatch
# (--shard I/2), waits, merges the shards with `neurn report`, and checks that
# the merged results equal an unsharded run of the same sweep.
# Exits 0 with "SKIPPED: <reason>" where Slurm cannot start (no packages, not
# root); 1 on any failure. Everything it starts is stopped at exit.
#   scripts/slurm/test_slurm.sh [NEURN_BIN]   (default build/bin/neurn)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
NEURN_BIN=$(realpath "${1:-build/bin/neurn}")
skip() { echo "SKIPPED: slurm test: $*"; exit 0; }
for p in slurmctld slurmd sbatch sinfo munged; do
  command -v "$p" >/dev/null || skip "$p not installed (apt-get install slurmctld slurmd slurm-client munge)"
done
[ "$(id -u)" = 0 ] || skip "needs root to run slurmd and munged"
[ -x "$NEURN_BIN" ] || { echo "slurm test: no neurn binary at $NEURN_BIN (build first)"; exit 1; }
command -v python3 >/dev/null || skip "python3 not installed (it writes the tiny data set and compares results)"

W=$(mktemp -d /tmp/neurn_slurm.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT

# ---- munge: a key of our own, a socket in $W ----------------------------------
mkdir -p "$W/munge"
dd if=/dev/urandom of="$W/munge/munge.key" bs=1024 count=1 status=none
chmod 700 "$W/munge"; chmod 400 "$W/munge/munge.key"
munged --force --key-file="$W/munge/munge.key" --socket="$W/munge/munge.socket" \
  --pid-file="$W/munge/munged.pid" --log-file="$W/munge/munged.log" --seed-file="$W/munge/seed" \
  || skip "munged does not start: $(tail -2 "$W/munge/munged.log" 2>/dev/null)"
pids+=("$(cat "$W/munge/munged.pid")")

# ---- slurm: one node, localhost, 2 CPUs -------------------------------------------
host=$(hostname -s)
cpus=$(nproc)
mkdir -p "$W/state" "$W/spool" "$W/log"
cat > "$W/slurm.conf" <<CONF
ClusterName=neurntest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$W/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/log/slurmctld.log
SlurmdLogFile=$W/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$W/slurm.conf
slurmctld -D -f "$SLURM_CONF" > "$W/log/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" > "$W/log/slurmd.out" 2>&1 &
pids+=($!)
up=0
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE "^(idle|mixed|allocated)"; then up=1; break; fi
  sleep 1
done
if [ $up = 0 ]; then
  echo "--- slurmctld"; tail -5 "$W/log/slurmctld.log" "$W/log/slurmctld.out" 2>/dev/null || true
  echo "--- slurmd"; tail -5 "$W/log/slurmd.log" "$W/log/slurmd.out" 2>/dev/null || true
  skip "slurmctld/slurmd did not bring the node up within 60 s (logs above)"
fi
echo "slurm: node $host up ($(sinfo -h -o '%P %D %T %c'))"

# ---- a tiny sweep on a tiny data set ---------------------------------------------------
python3 - "$W/data" <<'PY'
import os, random, struct, sys
root = sys.argv[1]
def digit(label, size, rng):
    img = [0.15 * rng.random() for _ in range(size * size)]
    cell = size // 4; cx, cy = (label % 4) * cell, (label // 4) * cell
    for y in range(cy, cy + cell):
        for x in range(cx, cx + cell): img[y * size + x] = 0.8 + 0.2 * rng.random()
    return img
def mnist(prefix, n, seed):
    rng = random.Random(seed); os.makedirs(root + "/mnist", exist_ok=True)
    labels = [i % 10 for i in range(n)]
    with open(root + "/mnist/%s-images-idx3-ubyte" % prefix, "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, 28, 28))
        for l in labels: f.write(bytes(int(v * 255) for v in digit(l, 28, rng)))
    with open(root + "/mnist/%s-labels-idx1-ubyte" % prefix, "wb") as f:
        f.write(struct.pack(">II", 2049, n) + bytes(labels))
def usps(name, n, seed):
    rng = random.Random(seed); os.makedirs(root + "/usps", exist_ok=True)
    with open(root + "/usps/" + name, "w") as f:
        for i in range(n):
            f.write("%d.0000 " % (i % 10) + " ".join("%.4f" % (2 * v - 1) for v in digit(i % 10, 16, rng)) + "\n")
mnist("train", 96, 11); mnist("t10k", 40, 12); usps("zip.train", 40, 13); usps("zip.test", 40, 14)
PY
sweep() {  # name output_dir
  cat <<YAML
name: $1
output_dir: $2
data_root: $W/data
models: [digits_convnet]
sources: [mnist]
targets: [usps]
neurn: [false, true]
seeds: [0]
protocol: {train_images: 96, val_images: 16, test_images: 40}
batch_size: 32
max_epochs: 2
early_stopping: {patience: 10}
device: cpu
YAML
}
sweep slurm "$W/sharded" > "$W/sharded.yaml"
sweep slurm "$W/single" > "$W/single.yaml"

# ---- the array job (2 tasks, --shard I/2), then the unsharded run ---------------------------
cd "$W"
echo "+ sbatch --array=0-1 --cpus-per-task=1 --wait scripts/slurm/neurn_array.sbatch $W/sharded.yaml"
NEURN_BIN=$NEURN_BIN sbatch --array=0-1 --cpus-per-task=1 --wait --export=ALL \
  "$ROOT/scripts/slurm/neurn_array.sbatch" "$W/sharded.yaml" || {
  echo "slurm test: the array job failed"; tail -20 "$W"/slurm-*.out 2>/dev/null || true; exit 1; }
for f in "$W"/slurm-*.out; do echo "--- $(basename "$f")"; tail -3 "$f"; done
cd "$ROOT"
"$NEURN_BIN" run "$W/single.yaml" > "$W/single.log" 2>&1 || { cat "$W/single.log"; exit 1; }
echo "+ neurn report $W/sharded"
"$NEURN_BIN" report "$W/sharded" --output "$W/sharded_report" | head -3
"$NEURN_BIN" report "$W/single" --output "$W/single_report" > /dev/null

# ---- the merged shards equal the unsharded run --------------------------------------------
ls "$W/sharded/shards"
python3 - "$W" <<'PY'
import glob, json, sys
w = sys.argv[1]
def load(files):
    out = {}
    for f in files:
        for line in open(f):
            if line.strip():
                r = json.loads(line); out[r["run_id"]] = r
    return out
sharded = load(sorted(glob.glob(w + "/sharded/shards/*/results.jsonl")))
single = load([w + "/single/results.jsonl"])
assert len(glob.glob(w + "/sharded/shards/*/results.jsonl")) == 2, "expected two shards"
assert sorted(sharded) == sorted(single) and len(single) == 2, (sorted(sharded), sorted(single))
# What the runs learned and measured; not when or how fast.
keys = ["status", "epochs_run", "best_epoch", "best_val_acc", "source_test", "targets", "fingerprint", "parameters"]
for rid in single:
    for k in keys:
        assert sharded[rid][k] == single[rid][k], (rid, k, sharded[rid][k], single[rid][k])
    h1 = [(e["epoch"], e["train_loss"], e["val_acc"]) for e in sharded[rid]["history"]]
    h2 = [(e["epoch"], e["train_loss"], e["val_acc"]) for e in single[rid]["history"]]
    assert h1 == h2, (rid, h1, h2)
t1 = open(w + "/sharded_report/table1.csv").read()
t2 = open(w + "/single_report/table1.csv").read()
assert t1 == t2, "table1.csv differs:\n" + t1 + "\n---\n" + t2
print("slurm: merged shards equal the unsharded run (%d runs, table1.csv identical)" % len(single))
PY
echo "slurm test: PASSED"
