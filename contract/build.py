"""Build, validate and check the contract wasm (run with contract/.venv/bin/python).

    python contract/build.py                  # build contract/build/renown_snapshots.wasm
    python contract/build.py --write-sha      # ... and record its sha256 beside the source
    python contract/build.py --check          # rebuild in a temp dir, compare with the record

Why not the ``nearc`` command: inside a container (it looks for /.dockerenv) it first runs
``uv sync`` or ``pip install -e .`` in the contract's folder, and it builds in the source's
folder. This calls nearc's ``compile_contract`` directly on a copy of the source in a fresh
temporary folder (``single_file``: nothing else in contract/ is frozen into the wasm), so every
build is a clean build and two builds give the same bytes.

One patch is applied to a copy of nearc's MicroPython port (PATCHES below): nearc's
``run_frozen_fn`` never calls ``emscripten_stack_init()`` (NEAR enters through the method's
export, never ``_start``), so the stack base is 0 and the first garbage collection scans
from the stack pointer to the end of memory and traps (out of bounds) once a call has
allocated the 32 KB heap. With the stack limits set, the GC works and a call can allocate
more than the heap in total; a 100-score batch needs that.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "renown_snapshots.py"
DEFAULT_OUT = HERE / "build" / "renown_snapshots.wasm"
SHA_FILE = HERE / "renown_snapshots.wasm.sha256"

# NEAR's wasm feature set (nearcore runtime/near-vm-runner/src/features.rs, prepare V2): MVP
# plus mutable globals and sign extension; no bulk memory, reference types, multi-value,
# SIMD, saturating float-to-int, threads, tail calls or exceptions (wabt disables the last
# three by default).
NEAR_WASM_FEATURES = [
    "--disable-bulk-memory",
    "--disable-reference-types",
    "--disable-multi-value",
    "--disable-simd",
    "--disable-saturating-float-to-int",
]


# (file under nearc/micropython, text to find, replacement): each must match exactly once.
PATCHES = [
    (
        "ports/webassembly-near/main.c",
        "void run_frozen_fn(const char* file_name, const char* fn_name)\n{\n",
        "void run_frozen_fn(const char* file_name, const char* fn_name)\n{\n"
        "  emscripten_stack_init(); /* renown: stack limits for the GC's stack scan */\n",
    ),
    (
        "ports/webassembly-near/main.c",
        "#include <emscripten.h>\n",
        "#include <emscripten.h>\n#include <emscripten/stack.h>\n",
    ),
]


def patched_assets(nearc_dir: Path, dest: Path) -> Path:
    """A copy of nearc's assets (its MicroPython tree) with PATCHES applied."""
    shutil.copytree(
        nearc_dir / "micropython",
        dest / "micropython",
        ignore=shutil.ignore_patterns(".git"),
        symlinks=True,
    )
    for rel, old, new in PATCHES:
        path = dest / "micropython" / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"build: cannot patch {rel}: the nearc version changed? ({old!r})")
        path.write_text(text.replace(old, new))
    return dest


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(out: Path) -> Path:
    """Compile the contract into ``out``; raise SystemExit with the reason on failure."""
    for tool in ("emcc", "make", "wasm-validate"):
        if shutil.which(tool) is None:
            raise SystemExit(f"build: {tool} not found (apt-get install -y emscripten wabt)")
    import nearc
    from nearc.builder import compile_contract

    venv = Path(sys.prefix)
    os.environ.setdefault("MAKEFLAGS", f"-j{os.cpu_count() or 1}")
    with tempfile.TemporaryDirectory(prefix="renown-contract-") as tmp:
        assets = patched_assets(Path(nearc.__file__).parent, Path(tmp) / "nearc")
        staged = Path(tmp) / "src" / SOURCE.name
        staged.parent.mkdir()
        shutil.copyfile(SOURCE, staged)
        built = Path(tmp) / "out.wasm"
        ok = compile_contract(staged, built, venv, assets, rebuild=True, single_file=True)
        if not ok or not built.exists():
            raise SystemExit("build: nearc failed (see its output above)")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, out)
    validate(out)
    return out


def validate(wasm: Path) -> None:
    result = subprocess.run(
        ["wasm-validate", *NEAR_WASM_FEATURES, str(wasm)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"build: wasm-validate refused {wasm}:\n{result.stderr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--write-sha", action="store_true", help=f"write {SHA_FILE.name}")
    parser.add_argument(
        "--check", action="store_true", help=f"rebuild in a temp dir, compare with {SHA_FILE.name}"
    )
    args = parser.parse_args(argv)

    if args.check:
        expected = SHA_FILE.read_text().split()[0]
        with tempfile.TemporaryDirectory(prefix="renown-contract-check-") as tmp:
            wasm = build(Path(tmp) / "renown_snapshots.wasm")
            got = sha256_of(wasm)
        if got != expected:
            print(f"contract-check: rebuilt wasm sha256 {got}")
            print(f"  differs from {SHA_FILE}: {expected}")
            return 1
        print(f"contract-check: OK, rebuilt wasm matches {SHA_FILE.name} ({got})")
        return 0

    wasm = build(args.out)
    digest = sha256_of(wasm)
    print(f"{wasm}: {wasm.stat().st_size} bytes, sha256 {digest}, valid for NEAR's features")
    if args.write_sha:
        SHA_FILE.write_text(f"{digest}  build/{wasm.name}\n")
        print(f"wrote {SHA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
