"""utils/: parse_options.sh, run.pl, slurm.pl (against a fake sbatch), split_scp.pl,
recipe_lib.sh."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
UTILS = REPO / "utils"


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "script.sh"
    path.write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        "nj=4              # number of jobs\n"
        "use_gpu=false     # use a GPU\n"
        'test_sets="a b"   # sets to decode\n'
        f"help_message='Usage: script.sh [options]'\n. {UTILS}/parse_options.sh\n{body}\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _run(args: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


def test_parse_options_space_equals_and_dashes(tmp_path):
    s = _script(tmp_path, 'echo "$nj $use_gpu $test_sets | $*"')
    assert _run([s, "--nj", "8", "rest"]).stdout.strip() == "8 false a b | rest"
    assert _run([s, "--nj=3", "--use-gpu", "true"]).stdout.strip() == "3 true a b |"
    assert _run([s, "--test_sets", "x y z"]).stdout.strip() == "4 false x y z |"


def test_parse_options_config_file_is_overridden_by_command_line(tmp_path):
    conf = tmp_path / "opts.conf"
    conf.write_text("nj=16\nuse_gpu=true\n")
    s = _script(tmp_path, 'echo "$nj $use_gpu"')
    assert _run([s, "--config", conf]).stdout.strip() == "16 true"
    assert _run([s, "--config", conf, "--nj", "2"]).stdout.strip() == "2 true"
    r = _run([s, "--config", tmp_path / "missing.conf"])
    assert r.returncode == 1 and "missing.conf" in r.stderr


def test_parse_options_rejects_unknown_option_and_bad_boolean(tmp_path):
    s = _script(tmp_path, "echo ok")
    r = _run([s, "--no-such-option", "1"])
    assert r.returncode == 1 and "invalid option --no-such-option" in r.stderr
    r = _run([s, "--use-gpu", "yes"])
    assert r.returncode == 1 and 'expected "true" or "false"' in r.stderr


def test_parse_options_help_lists_every_option_with_default(tmp_path):
    r = _run([_script(tmp_path, "echo never"), "--help"])
    assert r.returncode == 0
    assert "Usage: script.sh" in r.stdout
    for name, default, comment in (
        ("nj", "4", "number of jobs"),
        ("use_gpu", "false", "use a GPU"),
    ):
        line = next(ln for ln in r.stdout.splitlines() if f"--{name} " in ln)
        assert f"({default})" in line and comment in line
    assert "never" not in r.stdout


def test_run_pl_substitutes_job_and_writes_kaldi_log(tmp_path):
    r = _run(
        [
            UTILS / "run.pl",
            "JOB=1:3",
            tmp_path / "log" / "x.JOB.log",
            "echo",
            "job",
            "JOB",
            "of",
            "3",
        ]
    )
    assert r.returncode == 0, r.stderr
    for j in (1, 2, 3):
        text = (tmp_path / "log" / f"x.{j}.log").read_text()
        assert f"job {j} of 3" in text
        assert text.startswith(f"# echo job {j} of 3")
        assert "# Ended (code 0)" in text


def test_run_pl_failure_exits_1_and_names_failed_log(tmp_path):
    r = _run(
        [
            UTILS / "run.pl",
            "JOB=1:4",
            tmp_path / "x.JOB.log",
            "bash",
            "-c",
            "[ JOB -ne 3 ] || exit 7",
        ]
    )
    assert r.returncode == 1
    assert f"{tmp_path}/x.3.log" in r.stderr and "1 / 4 failed" in r.stderr
    assert "x.1.log" not in r.stderr
    assert "# Ended (code 7)" in (tmp_path / "x.3.log").read_text()


def test_run_pl_single_job_and_pipes(tmp_path):
    r = _run([UTILS / "run.pl", tmp_path / "one.log", "echo", "a b c", "|", "wc", "-w"])
    assert r.returncode == 0
    assert "\n3\n" in (tmp_path / "one.log").read_text()
    r = _run([UTILS / "run.pl", tmp_path / "fail.log", "false"])
    assert r.returncode == 1 and "job failed, log is in" in r.stderr and "fail.log" in r.stderr


def test_run_pl_max_jobs_run_limits_parallelism(tmp_path):
    # Each job records how many jobs are running when it starts; with --max-jobs-run 2 never > 2.
    marker = tmp_path / "running"
    marker.mkdir()
    cmd = f"touch {marker}/JOB; ls {marker} | wc -l > {tmp_path}/n.JOB; sleep 0.3; rm {marker}/JOB"
    r = _run(
        [
            UTILS / "run.pl",
            "--max-jobs-run",
            "2",
            "JOB=1:5",
            tmp_path / "l.JOB.log",
            "bash",
            "-c",
            cmd,
        ]
    )
    assert r.returncode == 0, r.stderr
    counts = [int((tmp_path / f"n.{j}").read_text()) for j in range(1, 6)]
    assert max(counts) <= 2


FAKE_SBATCH = r"""#!/usr/bin/env bash
# Fake sbatch: runs each array task of the script in turn, like `sbatch --wait` would.
array= ; script=
for a in "$@"; do
  case "$a" in
    --array=*) array=${a#--array=}; array=${array%%%*} ;;
    --*) echo "$a" >> "$FAKE_SBATCH_LOG" ;;
    *) script=$a ;;
  esac
done
echo "submitted $script array=$array" >> "$FAKE_SBATCH_LOG"
for ((i=${array%-*}; i<=${array#*-}; i++)); do SLURM_ARRAY_TASK_ID=$i bash "$script" || true; done
echo 4242
"""


@pytest.fixture
def fake_sbatch(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text(FAKE_SBATCH)
    (bindir / "sbatch").chmod(0o755)
    env = dict(
        os.environ,
        PATH=f"{bindir}:{os.environ['PATH']}",
        FAKE_SBATCH_LOG=str(tmp_path / "sbatch.log"),
    )
    return env


def test_slurm_pl_runs_array_job_with_run_pl_interface(tmp_path, fake_sbatch):
    r = _run(
        [
            UTILS / "slurm.pl",
            "--mem",
            "2G",
            "--num-threads",
            "2",
            "JOB=1:3",
            tmp_path / "log" / "s.JOB.log",
            "echo",
            "task",
            "JOB",
        ],
        env=fake_sbatch,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    submitted = (tmp_path / "sbatch.log").read_text()
    assert "array=1-3" in submitted and "--mem=2G" in submitted and "--cpus-per-task=2" in submitted
    for j in (1, 2, 3):
        text = (tmp_path / "log" / f"s.{j}.log").read_text()
        assert f"task {j}" in text and "# Ended (code 0)" in text


def test_slurm_pl_failure_names_failed_log(tmp_path, fake_sbatch):
    r = _run(
        [
            UTILS / "slurm.pl",
            "JOB=1:3",
            tmp_path / "log" / "f.JOB.log",
            "bash",
            "-c",
            "[ JOB -ne 2 ]",
        ],
        env=fake_sbatch,
        cwd=tmp_path,
    )
    assert r.returncode == 1
    assert "1 / 3 failed" in r.stderr and f"{tmp_path}/log/f.2.log" in r.stderr


def test_slurm_pl_without_sbatch_gives_clear_error(tmp_path):
    env = dict(os.environ, PATH="/usr/bin:/bin")
    r = _run([UTILS / "slurm.pl", tmp_path / "x.log", "true"], env=env, cwd=tmp_path)
    assert r.returncode != 0 and "sbatch" in r.stderr


def test_split_scp_even_parts_and_speaker_grouping(tmp_path):
    scp = tmp_path / "wav.scp"
    utt2spk = tmp_path / "utt2spk"
    utts = [f"s{s}-u{u}" for s in range(4) for u in range(s + 1)]  # 1+2+3+4 = 10 lines
    scp.write_text("".join(f"{u} /a/{u}.wav\n" for u in utts))
    utt2spk.write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    outs = [tmp_path / f"p{i}.scp" for i in range(3)]
    assert _run([UTILS / "split_scp.pl", scp, *outs]).returncode == 0
    sizes = [len(o.read_text().splitlines()) for o in outs]
    assert sum(sizes) == 10 and max(sizes) - min(sizes) <= 1
    assert "".join(o.read_text() for o in outs) == scp.read_text()  # order kept, nothing lost
    assert _run([UTILS / "split_scp.pl", "-j", "3", "1", scp]).stdout == outs[1].read_text()
    assert _run([UTILS / "split_scp.pl", f"--utt2spk={utt2spk}", scp, *outs]).returncode == 0
    speakers = [{ln.split("-")[0] for ln in o.read_text().splitlines()} for o in outs]
    assert all(speakers) and sum(len(s) for s in speakers) == 4  # no speaker in two parts
    r = _run([UTILS / "split_scp.pl", scp, *[tmp_path / f"q{i}" for i in range(11)]])
    assert r.returncode != 0 and "cannot split 10 lines" in r.stderr


def _check_output_dir(path, need_mb: int) -> subprocess.CompletedProcess:
    return _run(
        [
            "bash",
            "-c",
            f'. {UTILS}/recipe_lib.sh; check_output_dir "$1" {need_mb}; echo ok',
            "_",
            path,
        ]
    )


def test_check_output_dir_names_the_problem_before_work(tmp_path):
    assert _check_output_dir(tmp_path / "exp" / "new", 1).stdout == "ok\n"
    assert (tmp_path / "exp" / "new").is_dir() and not list((tmp_path / "exp" / "new").iterdir())
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = _check_output_dir(blocker / "exp", 1)
    assert r.returncode == 1 and "ok" not in r.stdout
    assert f"Error: cannot create {blocker}/exp (" in r.stdout and "Not a directory" in r.stdout
    r = _check_output_dir("/proc/self", 1)  # a directory no one can create files in, root included
    assert r.returncode == 1 and r.stdout.rstrip().endswith("Error: /proc/self is not writable")
    free_mb = int(
        subprocess.run(["df", "-Pm", str(tmp_path)], capture_output=True, text=True)
        .stdout.splitlines()[1]
        .split()[3]
    )
    r = _check_output_dir(tmp_path, free_mb + 10**6)
    assert r.returncode == 1
    assert r.stdout.rstrip().endswith(
        f"Error: {tmp_path} has {free_mb} MB free, at least {free_mb + 10**6} MB needed (--min_free_mb)"
    )


def test_claim_dir_lets_one_of_two_parallel_runs_take_a_job_and_frees_it_when_the_holder_dies(
    tmp_path,
):
    job = tmp_path / "exp" / "probe" / "teacher" / "asr"
    claim = f'. {UTILS}/recipe_lib.sh; if claim_dir "$1"; then echo claimed; else echo busy; fi'
    # a first run claims the job and starts a long one, which inherits the lock; the run exits
    holder = subprocess.Popen(
        ["bash", "-c", claim + '; sleep 30 & echo "$!" > "$1/pid"', "_", str(job)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "claimed\n"
    holder.wait()
    assert _run(["bash", "-c", claim, "_", job]).stdout == "busy\n"
    # release_dir frees it for the next claim in the same run
    both = claim + '; release_dir; if claim_dir "$1"; then echo again; fi'
    assert _run(["bash", "-c", both, "_", tmp_path / "other"]).stdout == "claimed\nagain\n"
    os.kill(int((job / "pid").read_text()), 9)  # the job dies: the kernel drops the lock
    for _ in range(100):
        if _run(["bash", "-c", claim, "_", job]).stdout == "claimed\n":
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"{job}/.lock is still held after its holder died")


def test_slurm_pl_multi_node_training_runs_one_srun_job(tmp_path, fake_sbatch):
    srun = tmp_path / "bin" / "srun"
    srun.write_text(
        '#!/usr/bin/env bash\necho "srun ${SLURM_NTASKS:-?}" >> "$FAKE_SBATCH_LOG"\n"$@"\n'
    )
    srun.chmod(0o755)
    r = _run(
        [
            UTILS / "slurm.pl",
            "--gpu",
            "4",
            "--num-nodes",
            "2",
            tmp_path / "log" / "train.log",
            "echo",
            "training",
        ],
        env=fake_sbatch,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    submitted = (tmp_path / "sbatch.log").read_text().splitlines()
    for opt in ("--nodes=2", "--ntasks-per-node=4", "--gres=gpu:4"):
        assert opt in submitted
    assert "srun ?" in submitted  # the command went through srun
    assert "training" in (tmp_path / "log" / "train.log").read_text()
    # run.pl takes the same options (and ignores them on one machine)
    r = _run([UTILS / "run.pl", "--gpu", "0", "--num-nodes", "1", tmp_path / "r.log", "echo", "ok"])
    assert r.returncode == 0 and "ok" in (tmp_path / "r.log").read_text()
    r = _run(
        [UTILS / "slurm.pl", "--gpu", "2", "JOB=1:2", tmp_path / "x.JOB.log", "true"],
        env=fake_sbatch,
        cwd=tmp_path,
    )
    assert r.returncode != 0 and "multi-process training runs one job" in r.stderr


def _supervised(tmp_path: Path) -> Path:
    """An engine-like script: supervise, then a job (a sleep in the background) and a wait on
    another in the foreground, as a stage waits on its command; the pids go to pids.txt."""
    path = tmp_path / "engine.sh"
    path.write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        f'. {UTILS}/recipe_lib.sh\nsupervise "$@"\n'
        f"sleep 300 &\necho $$ $! > {tmp_path}/pids.tmp\nmv {tmp_path}/pids.tmp {tmp_path}/pids.txt\n"
        "sleep 301\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _pids(tmp_path: Path) -> list[int]:
    deadline = time.time() + 20
    while not (tmp_path / "pids.txt").exists():
        assert time.time() < deadline, "the supervised script did not start"
        time.sleep(0.05)
    return [int(p) for p in (tmp_path / "pids.txt").read_text().split()]


def _all_gone(pids: list[int], seconds: float = 15) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        alive = []
        for pid in pids:
            try:
                os.kill(pid, 0)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGINT"])
def test_supervise_stops_every_job_on_sigterm_and_sigint(tmp_path, signal_name):
    """bash alone runs a trap only after the foreground command ends: the sleep 301 would keep
    the script, and the jobs, alive for five minutes."""
    import signal

    def default_signals() -> None:  # as from a terminal: a test runner started in the
        # background (nohup, CI) ignores SIGINT, which bash then cannot trap
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    proc = subprocess.Popen(
        [_supervised(tmp_path)], stderr=subprocess.PIPE, text=True, preexec_fn=default_signals
    )
    pids = _pids(tmp_path)
    proc.send_signal(getattr(signal, signal_name))
    assert proc.wait(timeout=20) == (143 if signal_name == "SIGTERM" else 130)
    assert _all_gone(pids), "jobs left running"
    assert f"stopping all its jobs on {signal_name}" in proc.stderr.read()


def test_supervise_stops_every_job_when_its_parent_is_killed(tmp_path):
    """kill -9 of the run.sh that started the engine (a SIGKILL nobody can trap)."""
    parent = subprocess.Popen(
        ["bash", "-c", f"{_supervised(tmp_path)}; echo never"], stderr=subprocess.DEVNULL
    )
    pids = _pids(tmp_path)
    parent.kill()
    parent.wait()
    assert _all_gone(pids), "the engine's jobs outlived the killed run.sh"
