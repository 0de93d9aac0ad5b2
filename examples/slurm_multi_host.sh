#!/bin/bash
# kresnet on SLURM: one process per node drives all of that node's GPUs (docs/scale.md, "Several hosts").
# Submit with `sbatch examples/slurm_multi_host.sh`; submit it again to resume a stopped run.
#SBATCH --job-name=kresnet-r50d
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
# Every GPU of a node (most clusters give none unless asked; older SLURM: --gres=gpu:8).
#SBATCH --gpus-per-node=8
set -eu
export KERAS_BACKEND=jax
# Process 0 runs on the first node; the port follows the job id, so that two jobs whose first node
# is the same do not collide.
coordinator=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export KERAS_DISTRIBUTION_JOB_ADDRESSES="$coordinator:$((12000 + SLURM_JOB_ID % 20000))"
export KERAS_DISTRIBUTION_NUM_PROCESSES=$SLURM_NTASKS
srun bash -c 'KERAS_DISTRIBUTION_PROCESS_ID=$SLURM_PROCID exec kresnet train r50d --out runs/r50d \
  --set distribution.strategy=data_parallel --set distribution.multi_host=true'
