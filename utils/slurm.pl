#!/usr/bin/env perl
# Slurm job runner with run.pl's interface, so cmd.sh can switch between them.
#
# Usage: utils/slurm.pl [options] [JOB=1:N] <log-file> <command> [<args>...]
# Writes a batch script to <log-dir>/q/, submits it as one array job with `sbatch --wait`, and then
# reads each task's exit status from <log-dir>/q/. Logs have run.pl's header and footer. Exit status
# 0 if every task succeeded; otherwise 1, after naming each failed task's log file. As with run.pl,
# the log of a run that did not end with code 0 is kept and the rerun appends to it.
# Options:
#   --num-threads N    --cpus-per-task N          --mem SIZE     --mem SIZE (per node)
#   --gpu N            --gres gpu:N               --time T       --time T
#   --max-jobs-run N   at most N array tasks at a time (--array=1-N%M)
#   --partition P      --partition P              --config FILE  accepted, ignored
#   --num-nodes M      --nodes M
# Multi-process training (--gpu N > 1 or --num-nodes M > 1, array of one task): one Slurm task per
# GPU (--ntasks-per-node N) started by srun, which Lightning's SLURM environment joins into one
# DDP group.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use JobArgs;
use Cwd qw(getcwd);

my %sbatch_opt;
my $max_jobs_run = -1;
my ($gpus, $nodes) = (0, 1);
while (@ARGV && $ARGV[0] =~ m/^--/) {
  my $opt = shift @ARGV;
  if ($opt =~ m/^--([a-z_-]+)=(.*)$/) { unshift @ARGV, $2; $opt = "--$1"; }
  my $val = shift @ARGV;
  die "slurm.pl: option $opt needs a value\n" unless defined $val;
  $opt =~ s/_/-/g;
  if ($opt eq "--num-threads") { $sbatch_opt{"--cpus-per-task"} = $val; }
  elsif ($opt eq "--mem") { $sbatch_opt{"--mem"} = $val; }
  elsif ($opt eq "--gpu") { $sbatch_opt{"--gres"} = "gpu:$val" if $val > 0; $gpus = $val; }
  elsif ($opt eq "--num-nodes") { $nodes = $val; $sbatch_opt{"--nodes"} = $val if $val > 1; }
  elsif ($opt eq "--time") { $sbatch_opt{"--time"} = $val; }
  elsif ($opt eq "--partition") { $sbatch_opt{"--partition"} = $val; }
  elsif ($opt eq "--max-jobs-run") { $max_jobs_run = $val; }
  elsif ($opt ne "--config") { die "slurm.pl: unknown option $opt\n"; }
}

my ($jobname, $jobstart, $jobend, $logfile, $cmd) = JobArgs::parse("slurm.pl", @ARGV);
if ($gpus > 1 || $nodes > 1) {
  die "slurm.pl: multi-process training runs one job, not an array\n" if defined $jobname;
  $sbatch_opt{"--ntasks-per-node"} = $gpus > 1 ? $gpus : 1;
  $cmd = "srun $cmd";
}
my $task_log = $logfile;
if (defined $jobname) {
  $cmd =~ s/\b$jobname\b/\${SLURM_ARRAY_TASK_ID}/g;
  $task_log =~ s/\b$jobname\b/\${SLURM_ARRAY_TASK_ID}/g;
}

my $logdir = ".";
$logdir = $1 if $logfile =~ m:^(.*)/[^/]+$:;
my $base = $logfile;
$base =~ s:.*/::;
$base =~ s/\.log$//;
$base =~ s/\b$jobname\b//g if defined $jobname;
$base =~ s/[^\w.-]+/_/g;
my $qdir = "$logdir/q";
system("mkdir", "-p", $qdir) == 0 or die "slurm.pl: cannot create $qdir\n";
my $script = "$qdir/$base.sh";
my $status = "$qdir/$base.status";
unlink glob("$status.*");

my $cwd = getcwd();
open(my $fh, ">", $script) or die "slurm.pl: cannot write $script: $!\n";
print $fh <<"END";
#!/usr/bin/env bash
cd '$cwd' || exit 1
[ -f ./path.sh ] && . ./path.sh
SLURM_ARRAY_TASK_ID=\${SLURM_ARRAY_TASK_ID:-$jobstart}
log=$task_log
mkdir -p "\$(dirname "\$log")"
if [ -s "\$log" ] && ! tail -n 1 "\$log" | grep -q '^# Ended (code 0)'; then
  echo "# ---- rerun at \$(date); above: the log of an earlier run that did not finish ----" >> "\$log"
else
  : > "\$log"
fi
{ echo "# $cmd"; echo "# Started at \$(date) on \$(hostname)"; echo "#"; } >> "\$log"
start=\$(date +%s)
( $cmd ) >> "\$log" 2>&1
ret=\$?
end=\$(date +%s)
echo "# Accounting: time=\$((end - start)) threads=\${SLURM_CPUS_PER_TASK:-1}" >> "\$log"
echo "# Ended (code \$ret) at \$(date), elapsed time \$((end - start)) seconds" >> "\$log"
echo \$ret > $status.\${SLURM_ARRAY_TASK_ID}
exit \$ret
END
close($fh);
chmod 0755, $script;

my $array = "$jobstart-$jobend";
$array .= "%$max_jobs_run" if $max_jobs_run > 0;
my @sbatch = ("sbatch", "--wait", "--parsable", "--job-name=$base", "--array=$array",
              "--output=$qdir/$base.%a.out");
push @sbatch, "$_=$sbatch_opt{$_}" for sort keys %sbatch_opt;
push @sbatch, $script;
system(@sbatch);   # --wait: returns when every task has ended; statuses are read below.
if ($? == -1) {
  die "slurm.pl: cannot run sbatch ($!): is Slurm installed? (use run.pl in cmd.sh otherwise)\n";
}

my @failed;
my $n_jobs = $jobend - $jobstart + 1;
for my $jobid ($jobstart .. $jobend) {
  my $log = $logfile;
  $log =~ s/\b$jobname\b/$jobid/g if defined $jobname;
  my $code;
  if (open(my $sf, "<", "$status.$jobid")) { $code = <$sf>; close($sf); chomp $code if defined $code; }
  if (!defined $code || $code eq "") {
    push @failed, "$log (task $jobid left no exit status; see $qdir/$base.$jobid.out)";
  } elsif ($code != 0) {
    push @failed, $log;
  }
}
if (@failed) {
  if ($n_jobs == 1) { print STDERR "slurm.pl: job failed, log is in $failed[0]\n"; }
  else { print STDERR "slurm.pl: " . scalar(@failed) . " / $n_jobs failed, log is in $_\n" for @failed; }
  exit 1;
}
exit 0;
