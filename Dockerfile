# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1
WORKDIR /app
# Debian's Tesseract OCRs scanned PDF pages (knowledge/extractors/ocr.py); add tesseract-ocr-<lang> for OCR_LANGUAGES.
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*
# The CPU build of torch first: a bare `torch` dependency would pull a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY . .
RUN pip install . && python -m knowledge.embedder_export && python manage.py collectstatic --noinput
RUN useradd --create-home minds && mkdir -p /app/.data/media && chown -R minds /app/.data
USER minds
EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.conf.py", "--bind", "0.0.0.0:8000", "config.wsgi:application"]
