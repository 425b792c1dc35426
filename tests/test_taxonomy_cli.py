import json
import subprocess
import sys

CLI = [sys.executable, "-m", "catalogvlm.cli"]


def run(args, stdin=b""):
    return subprocess.run(CLI + args, input=stdin, capture_output=True, timeout=120, check=False)


def test_correct_arguments_print_json_lines():
    done = run(["taxonomy", "correct", "Apparel & Accessories > Watches > Smartwatch", "aa-1-4"])
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [set(line) for line in lines] == [{"input", "id", "full_name", "score", "corrected"}] * 2
    assert lines[0]["full_name"] == "Apparel & Accessories > Jewelry > Smart Watches"
    assert lines[1]["full_name"] == "Apparel & Accessories > Clothing > Dresses"


def test_correct_reads_stdin_and_reports_bad_lines():
    done = run(["taxonomy", "correct"], stdin=b"Furniture > Sofas\n\xff bad\n\nHome and Garden > Decor > Vases\n")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 1
    assert [line.get("full_name") for line in lines] == [
        "Furniture > Sofas",
        None,
        None,
        "Home & Garden > Decor > Vases",
    ]
    assert "UTF-8" in lines[1]["error"] and "empty" in lines[2]["error"]


def test_show_prints_ancestors_and_menu():
    done = run(["taxonomy", "show", "Apparel & Accessories > Clothing > Activewear > Activewear Pants > Leggings"])
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["id"].endswith("aa-1-1-1-2")
    assert [a["name"] for a in shown["ancestors"]][:2] == ["Apparel & Accessories", "Clothing"]
    assert any(a["handle"] == "color" and a["values"] for a in shown["attributes"])


def test_missing_taxonomy_folder_is_explained(tmp_path):
    done = run(["taxonomy", "--taxonomy", str(tmp_path), "show", "aa"])
    assert done.returncode == 2
    assert b"CATALOGVLM_TAXONOMY" in done.stderr
