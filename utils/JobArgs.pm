# The arguments Kaldi's job runners share (utils/run.pl, utils/slurm.pl), after their options:
#   [JOB=1:N] <log-file> <command> [<args>...]
package JobArgs;
use strict;
use warnings;

# parse(PROG, ARGS...): (job name or undef, first job, last job, log file, command). A job range
# JOB=a:b or JOB=a names the variable replaced in the log file and the command; several jobs need
# it in the log file name. The command's words are joined as Kaldi does: words without whitespace
# unquoted (so "|" is a pipe), others quoted. Dies with a message naming PROG on bad arguments.
sub parse {
  my ($prog, @args) = @_;
  my ($jobname, $jobstart, $jobend) = (undef, 1, 1);
  if (@args && $args[0] =~ m/^([\w_][\w\d_]*)+=(\d+):(\d+)$/) {
    ($jobname, $jobstart, $jobend) = ($1, $2, $3);
    shift @args;
    die "$prog: invalid job range $jobstart:$jobend\n" if $jobstart > $jobend;
  } elsif (@args && $args[0] =~ m/^([\w_][\w\d_]*)+=(\d+)$/) {
    ($jobname, $jobstart, $jobend) = ($1, $2, $2);
    shift @args;
  } elsif (@args && $args[0] =~ m/=/) {
    die "$prog: the first argument looks like a job range but is not one: '$args[0]'\n";
  }
  if (@args < 2) {
    print STDERR "Usage: $prog [options] [JOB=1:N] <log-file> <command>...\n";
    exit 1;
  }
  my $logfile = shift @args;
  if (defined $jobname && $logfile !~ m/$jobname/ && $jobend > $jobstart) {
    die "$prog: the log file '$logfile' must contain '$jobname' when running several jobs\n";
  }
  my $cmd = "";
  foreach my $x (@args) {
    if ($x =~ m/^\S+$/) { $cmd .= $x . " "; }
    elsif ($x =~ m:\":) { $cmd .= "'$x' "; }
    else { $cmd .= "\"$x\" "; }
  }
  return ($jobname, $jobstart, $jobend, $logfile, $cmd);
}

1;
