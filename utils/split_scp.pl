#!/usr/bin/env perl
# Kaldi-compatible scp splitter.
#
# Usage: utils/split_scp.pl [--utt2spk=<utt2spk>] <in.scp> <out1.scp> [<out2.scp> ...]
#        utils/split_scp.pl [--utt2spk=<utt2spk>] -j <N> <k> <in.scp>   # part k (0-based) to stdout
# Lines are split into contiguous, nearly equal parts (sizes differ by at most one line). With
# --utt2spk, a speaker's utterances stay in one part (the input must be sorted by speaker); then the
# parts are balanced by line count as well as the speaker boundaries allow.
use strict;
use warnings;

my $utt2spk_file;
if (@ARGV && $ARGV[0] =~ m/^--utt2spk=(.+)$/) { $utt2spk_file = $1; shift @ARGV; }
my ($num_jobs, $job_id);
if (@ARGV && $ARGV[0] eq "-j") {
  shift @ARGV;
  ($num_jobs, $job_id) = (shift @ARGV, shift @ARGV);
  die "split_scp.pl: -j needs N and k with 0 <= k < N\n"
    unless defined $job_id && $num_jobs =~ m/^\d+$/ && $job_id =~ m/^\d+$/ && $job_id < $num_jobs;
}
die "Usage: split_scp.pl [--utt2spk=file] in.scp out1.scp [out2.scp ...]\n" unless @ARGV >= 1;
my $in = shift @ARGV;
my @outs = @ARGV;
$num_jobs = scalar(@outs) unless defined $num_jobs;
die "split_scp.pl: no output files given\n" if $num_jobs == 0;

open(my $fh, "<", $in) or die "split_scp.pl: cannot open $in: $!\n";
my @lines = <$fh>;
close($fh);
die "split_scp.pl: $in is empty\n" unless @lines;
die "split_scp.pl: cannot split " . scalar(@lines) . " lines of $in into $num_jobs parts\n"
  if !defined $utt2spk_file && @lines < $num_jobs;

# Group lines into units that must not be split: one line each, or one speaker each.
my @groups;
if (defined $utt2spk_file) {
  my %spk;
  open(my $u, "<", $utt2spk_file) or die "split_scp.pl: cannot open $utt2spk_file: $!\n";
  while (<$u>) { my @f = split; $spk{$f[0]} = $f[1] if @f >= 2; }
  close($u);
  my $prev = "";
  my %seen;
  for my $line (@lines) {
    my ($utt) = split(/\s+/, $line);
    die "split_scp.pl: $in: utterance $utt has no speaker in $utt2spk_file\n" unless exists $spk{$utt};
    my $s = $spk{$utt};
    if ($s ne $prev) {
      die "split_scp.pl: $in is not sorted by speaker (speaker $s appears twice)\n" if $seen{$s}++;
      push @groups, [];
      $prev = $s;
    }
    push @{$groups[-1]}, $line;
  }
  die "split_scp.pl: cannot split " . scalar(@groups) . " speakers into $num_jobs parts\n"
    if @groups < $num_jobs;
} else {
  @groups = map { [$_] } @lines;
}

# Greedy contiguous partition: part j ends where the cumulative line count passes (j+1)/N.
my $total = scalar(@lines);
my @parts = map { [] } (1 .. $num_jobs);
my ($j, $count) = (0, 0);
for my $g (0 .. $#groups) {
  my $remaining_groups = @groups - $g;
  my $remaining_parts = $num_jobs - $j;
  if ($j < $num_jobs - 1 && @{$parts[$j]} > 0
      && ($count >= $total * ($j + 1) / $num_jobs || $remaining_groups <= $remaining_parts - 1)) {
    $j++;
  }
  push @{$parts[$j]}, @{$groups[$g]};
  $count += scalar(@{$groups[$g]});
}

if (@outs == 0) {
  print @{$parts[$job_id]};
} else {
  for my $k (0 .. $#outs) {
    open(my $o, ">", $outs[$k]) or die "split_scp.pl: cannot write $outs[$k]: $!\n";
    print $o @{$parts[$k]};
    close($o);
  }
}
