# shellcheck shell=bash
# Job runners (Kaldi style): run.pl on this machine; on a Slurm cluster use e.g.
#   export train_cmd="slurm.pl --mem 4G"; export cuda_cmd="slurm.pl --gpu 1 --mem 16G"
export train_cmd="run.pl"
export cuda_cmd="run.pl"
export decode_cmd="run.pl"
