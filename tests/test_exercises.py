"""Student versions of the tutorials: solution cells stripped, nothing else, and they still run."""
import os
import subprocess
import sys

import pytest
from conftest import ROOT, by_tutorial, find_mnist_dir

from tinyae.exercises import solution_cells, split_cells, strip_solutions, write_student_versions

TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))

SAMPLE = '''"""a prelude before the first cell"""

# %% [markdown]
# # Title

# %%
x = 1

# %% [markdown]
# ## Exercise: twice
#
# Write it.

# %%
def twice(v):
    raise NotImplementedError("write twice")

# %% tags=["exercise"]
print("check")

# %% [markdown] tags=["solution"]
# ## Solutions

# %% tags=["solution"]
def twice(v):
    return 2 * v


# %% tags=["keep", "solution"] title="another"
assert twice(2) == 4


'''

STRIPPED = '''"""a prelude before the first cell"""

# %% [markdown]
# # Title

# %%
x = 1

# %% [markdown]
# ## Exercise: twice
#
# Write it.

# %%
def twice(v):
    raise NotImplementedError("write twice")

# %% tags=["exercise"]
print("check")
'''


def test_strip_removes_every_solution_cell_and_nothing_else():
    assert strip_solutions(SAMPLE) == STRIPPED
    assert "".join(cell.text for cell in split_cells(SAMPLE)) == SAMPLE
    assert len(solution_cells(SAMPLE)) == 3


def test_strip_keeps_a_text_without_solutions_byte_for_byte():
    for text in (STRIPPED, STRIPPED + "\n\n\n", "no cells at all\n", "", "# %%\nx = 1"):
        assert strip_solutions(text) == text


def test_strip_keeps_windows_line_endings():
    crlf = SAMPLE.replace("\n", "\r\n")
    assert strip_solutions(crlf) == STRIPPED.replace("\n", "\r\n")


def test_a_cell_in_the_middle_goes_alone():
    text = '# %%\na = 1\n\n# %% tags=["solution"]\nb = 2\n\n# %%\nc = 3\n'
    assert strip_solutions(text) == "# %%\na = 1\n\n# %%\nc = 3\n"


@pytest.mark.parametrize("header", ['# %% tags=solution', '# %% tags=["solution"', '# %% tags=[1]'])
def test_unreadable_tags_are_an_error_naming_the_line(header):
    with pytest.raises(ValueError, match=r"line 3: .*tags=\[\"solution\"\]"):
        strip_solutions(f"# %%\nx = 1\n{header}\ny = 2\n")


def test_only_the_solution_tag_counts():
    text = '# %% tags=["solutions", "no-solution"]\nx = 1\n'
    assert strip_solutions(text) == text


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "student"
    written = write_student_versions(ROOT / "tutorials", out)
    return out, written


def test_student_versions_of_the_tutorials_folder(student):
    out, written = student
    names = [t.name for t in TUTORIALS] + ["README.md"]
    assert sorted(p.name for p in written) == sorted(names)
    assert sorted(p.name for p in out.iterdir()) == sorted(names)          # no temp files left
    assert (out / "README.md").read_bytes() == (ROOT / "tutorials" / "README.md").read_bytes()
    for t in TUTORIALS:
        text = t.read_text()
        stripped = (out / t.name).read_text()
        assert stripped == strip_solutions(text)
        if not solution_cells(text):                                         # copied as it is
            assert (out / t.name).read_bytes() == t.read_bytes()


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_no_solution_code_is_left_in_a_student_version(path, student):
    """Each solution code cell has lines of its own (not merely the skeleton again), and
    none of them, nor the Solutions heading, is left in the stripped copy."""
    out, _ = student
    text = path.read_text()
    solutions = solution_cells(text)
    if not solutions:
        pytest.skip(f"{path.name} has no solution cells yet")
    kept = [cell for cell in split_cells(text) if not cell.is_solution]
    kept_lines = {line.strip() for cell in kept for line in cell.text.splitlines()}
    stripped = (out / path.name).read_text()
    stripped_lines = {line.strip() for line in stripped.splitlines()}
    assert "".join(cell.text for cell in kept).rstrip() == stripped.rstrip()
    assert 'tags=["solution"]' not in stripped and "# ## Solutions" not in stripped
    for cell in solutions:
        own = {line.strip() for line in cell.body.splitlines()
               if line.strip() and not line.lstrip().startswith("#")} - kept_lines
        if not cell.header.startswith("# %% [markdown]"):
            assert own, f"{path.name} line {cell.line}: a solution cell with nothing of its own"
        assert not own & stripped_lines


def test_every_tutorial_01_to_12_ends_with_exercises_then_tagged_solutions():
    """The course convention (tutorials 07-12 are converted in parallel: until then this fails
    for them): one or more '## Exercise' headers, then a markdown cell tagged solution with
    '## Solutions', after which every cell is tagged solution, with at least one code cell."""
    problems = []
    for path in TUTORIALS:
        cells = split_cells(path.read_text())
        marker = [k for k, c in enumerate(cells) if c.header.startswith("# %% [markdown]")
                  and any(line.strip() == "# ## Solutions" for line in c.body.splitlines())]
        if len(marker) != 1:
            problems.append(f"{path.name}: {len(marker)} '# ## Solutions' markdown cells, want 1")
            continue
        m = marker[0]
        before, after = cells[:m], cells[m:]
        if not any(line.startswith("# ## Exercise") for c in before if c.header.startswith("# %% [markdown]")
                   for line in c.body.splitlines()):
            problems.append(f"{path.name}: no '## Exercise' header before the Solutions")
        if any(c.is_solution for c in before):
            problems.append(f"{path.name}: a cell tagged solution before the Solutions marker")
        untagged = [c.line for c in after if not c.is_solution]
        if untagged:
            problems.append(f"{path.name}: cells after the Solutions marker without "
                            f'tags=["solution"], at lines {untagged}')
        if not any(not c.header.startswith("# %% [markdown]") for c in after):
            problems.append(f"{path.name}: no solution code cell")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    out = tmp_path_factory.mktemp("student-out")
    env = {**os.environ, "TINYAE_FAST": "1", "TINYAE_TUTORIAL_OUT": str(out), "MPLBACKEND": "Agg"}
    mnist = find_mnist_dir()
    env["TINYAE_DATA_DIR"] = str(mnist) if mnist is not None else str(out / "no-data")
    return env, out


@pytest.mark.parametrize("path", by_tutorial(TUTORIALS))
def test_student_version_runs_and_says_not_done_yet(path, student, env):
    folder, _ = student
    env, out = env
    script = folder / path.name
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                       cwd=out, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    checks = script.read_text().count("\nwith exercise(")
    assert checks >= 1
    assert r.stdout.count("not done yet") == checks, r.stdout[-2000:]


# refusals: nothing is overwritten, and each error says what to do

def test_refuses_a_missing_source(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        write_student_versions(tmp_path / "nope", tmp_path / "out")


def test_refuses_to_write_into_the_source_folder(tmp_path):
    (tmp_path / "01_a.py").write_text(SAMPLE)
    with pytest.raises(ValueError, match="is the source folder"):
        write_student_versions(tmp_path, tmp_path)
    with pytest.raises(ValueError, match="is the source folder"):
        write_student_versions(tmp_path, tmp_path / "sub" / "..")
    assert (tmp_path / "01_a.py").read_text() == SAMPLE


def test_refuses_to_overwrite_and_writes_nothing(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "01_a.py").write_text(SAMPLE)
    (src / "02_b.py").write_text(SAMPLE)
    (out / "02_b.py").write_text("mine")
    with pytest.raises(ValueError, match=r"02_b.py already exists.*choose an empty folder, remove"):
        write_student_versions(src, out)
    assert sorted(p.name for p in out.iterdir()) == ["02_b.py"]
    assert (out / "02_b.py").read_text() == "mine"


def test_one_file_into_its_own_folder_is_refused(tmp_path):
    (tmp_path / "01_a.py").write_text(SAMPLE)
    with pytest.raises(ValueError, match="is one of the sources"):
        write_student_versions(tmp_path / "01_a.py", tmp_path)
    assert (tmp_path / "01_a.py").read_text() == SAMPLE


def test_one_file_and_an_output_folder_inside_the_source(tmp_path):
    (tmp_path / "01_a.py").write_text(SAMPLE)
    (tmp_path / "notes.txt").write_text("not a tutorial")
    written = write_student_versions(tmp_path / "01_a.py", tmp_path / "student")
    assert written == [tmp_path / "student" / "01_a.py"]
    assert written[0].read_text() == STRIPPED
    written = write_student_versions(tmp_path, tmp_path / "student2")       # inside src: fine
    assert [p.name for p in written] == ["01_a.py"]


def test_not_utf8_is_a_clear_error(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "01_a.py").write_bytes(b"# %%\nx = '\xff'\n")
    with pytest.raises(ValueError, match="01_a.py is not UTF-8 text"):
        write_student_versions(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_an_output_that_is_a_file(tmp_path):
    (tmp_path / "01_a.py").write_text(SAMPLE)
    (tmp_path / "out").write_text("")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        write_student_versions(tmp_path / "01_a.py", tmp_path / "out")


# --- found by a red-team pass ----------------------------------------------------------
def test_a_notebook_source_is_refused(tmp_path):
    (tmp_path / "nb.ipynb").write_text('{"cells": []}')
    with pytest.raises(ValueError, match="jupytext --to py:percent"):
        write_student_versions(tmp_path / "nb.ipynb", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_cell_marker_inside_a_string_is_refused_not_cut(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text('# %%\ntext = """\n# %% tags=["solution"]\n"""\nprint(text)\n')
    (src / "b.py").write_text("# %%\nprint(1)\n")
    with pytest.raises(ValueError, match=r"a.py: without its solution cells it is no longer "
                                         r"valid Python .*'# %%' line inside a string"):
        write_student_versions(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()            # checked before anything is written


def test_a_bad_tag_names_its_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("# %% [markdown] tags=['solution']\n# text\n")
    with pytest.raises(ValueError, match=r"a.py: line 1: the cell header"):
        write_student_versions(src, tmp_path / "out")


def test_an_interrupted_strip_leaves_no_half_set(tmp_path, monkeypatch):
    from tinyae import exercises
    real, calls = exercises.atomic_write, []

    def interrupted(*args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(*args)
    monkeypatch.setattr(exercises, "atomic_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_student_versions(ROOT / "tutorials", tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_force_replaces_earlier_student_versions_never_a_source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text('# %%\nx = 1\n\n# %% tags=["solution"]\nx = 2\n')
    write_student_versions(src, tmp_path / "out")
    (src / "a.py").write_text('# %%\nx = 3\n\n# %% tags=["solution"]\nx = 2\n')
    with pytest.raises(ValueError, match="add --force"):
        write_student_versions(src, tmp_path / "out")
    write_student_versions(src, tmp_path / "out", force=True)
    assert (tmp_path / "out" / "a.py").read_text() == "# %%\nx = 3\n"
    with pytest.raises(ValueError, match="is one of the sources"):
        write_student_versions(src / "a.py", src, force=True)
