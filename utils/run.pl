#!/usr/bin/env perl
# Kaldi-compatible local job runner.
#
# Usage: utils/run.pl [options] [JOB=1:N] <log-file> <command> [<args>...]
#   e.g. utils/run.pl JOB=1:4 exp/log/feats.JOB.log python -m x --part JOB --nj 4
# Every JOB in the log file name and the command is replaced by the job index. The command runs
# under bash with its stdout and stderr in the log file, framed by a header ("# <command>",
# "# Started at") and a footer ("# Accounting: time=...", "# Ended (code N) at ..."), as in Kaldi.
# A log whose run did not end with code 0 (killed, failed) is kept: the rerun appends to it, below
# a "# ---- rerun at ..." line, so a resumed training's log shows the killed run too.
# Exit status 0 if every job succeeded; otherwise 1, after naming each failed job's log file.
# Options (cluster options are accepted so that cmd.sh can switch to slurm.pl unchanged):
#   --max-jobs-run N   run at most N jobs at a time (default: all at once)
#   --num-threads N, --mem SIZE, --gpu N, --time T, --config FILE   accepted, ignored locally
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use JobArgs;
use POSIX ();

my $max_jobs_run = -1;
while (@ARGV && $ARGV[0] =~ m/^--/) {
  my $opt = shift @ARGV;
  if ($opt =~ m/^--([a-z_-]+)=(.*)$/) { unshift @ARGV, $2; $opt = "--$1"; }
  my $val = shift @ARGV;
  die "run.pl: option $opt needs a value\n" unless defined $val;
  if ($opt eq "--max-jobs-run") {
    die "run.pl: --max-jobs-run must be a positive integer, got '$val'\n" unless $val =~ m/^\d+$/ && $val > 0;
    $max_jobs_run = $val;
  } elsif ($opt !~ m/^--(num-threads|mem|gpu|time|config|max_jobs_run|num_threads|num-nodes|num_nodes)$/) {
    die "run.pl: unknown option $opt\n";
  }
}

my ($jobname, $jobstart, $jobend, $logfile, $cmd) = JobArgs::parse("run.pl", @ARGV);

sub run_job {
  my ($jobid) = @_;
  my $this_cmd = $cmd;
  my $this_log = $logfile;
  if (defined $jobname) {
    $this_cmd =~ s/\b$jobname\b/$jobid/g;
    $this_log =~ s/\b$jobname\b/$jobid/g;
  }
  my $dir = $this_log;
  if ($dir =~ s:/[^/]+$::) { system("mkdir", "-p", $dir) == 0 or die "run.pl: cannot create $dir\n"; }
  # The log of a run that did not end well (killed, failed) is kept: the rerun appends below it.
  my $mode = ">";
  if (-s $this_log && open(my $old, "<", $this_log)) {
    my $last = "";
    $last = $_ while <$old>;
    close($old);
    $mode = ">>" unless $last =~ m/^# Ended \(code 0\)/;
  }
  open(my $fh, $mode, $this_log) or die "run.pl: cannot write log file $this_log: $!\n";
  print $fh "# ---- rerun at " . localtime() . "; above: the log of an earlier run that did not finish ----\n"
    if $mode eq ">>";
  print $fh "# $this_cmd\n# Started at " . localtime() . "\n#\n";
  close($fh);
  my $start = time();
  my $ret = system("bash", "-c", "( $this_cmd ) >>'$this_log' 2>&1");
  my $code = $ret == -1 ? 127 : ($ret & 127 ? 128 + ($ret & 127) : $ret >> 8);
  my $elapsed = time() - $start;
  open($fh, ">>", $this_log) or die "run.pl: cannot append to $this_log: $!\n";
  print $fh "# Accounting: time=$elapsed threads=1\n";
  print $fh "# Ended (code $code) at " . localtime() . ", elapsed time $elapsed seconds\n";
  close($fh);
  return ($code, $this_log);
}

my %running;   # pid -> job id
my %failed;    # job id -> log file
my $n_jobs = $jobend - $jobstart + 1;
my $limit = $max_jobs_run > 0 ? $max_jobs_run : $n_jobs;
sub reap_one {
  my $pid = wait();
  return if $pid <= 0;
  my $jobid = delete $running{$pid};
  if ($? != 0) {
    my $log = $logfile;
    $log =~ s/\b$jobname\b/$jobid/g if defined $jobname;
    $failed{$jobid} = $log;
  }
}
for my $jobid ($jobstart .. $jobend) {
  reap_one() while scalar(keys %running) >= $limit;
  my $pid = fork();
  die "run.pl: fork failed: $!\n" unless defined $pid;
  if ($pid == 0) {
    my ($code) = run_job($jobid);
    POSIX::_exit($code > 255 ? 255 : $code);
  }
  $running{$pid} = $jobid;
}
reap_one() while %running;

if (%failed) {
  my @ids = sort { $a <=> $b } keys %failed;
  if ($n_jobs == 1) {
    print STDERR "run.pl: job failed, log is in $failed{$ids[0]}\n";
  } else {
    print STDERR "run.pl: " . scalar(@ids) . " / $n_jobs failed, log is in $failed{$_}\n" for @ids;
  }
  exit 1;
}
exit 0;
