# ParetoNAS image: one image for the API, the queue workers and the Ray head/worker nodes, so
# every Ray node runs the same Python, Ray and ParetoNAS versions (Ray requires that).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# CPU wheels of torch/torchvision first: the default index would pull several GiB of CUDA.
RUN pip install --index-url https://download.pytorch.org/whl/cpu \
        torch==2.14.1 torchvision==0.29.1

COPY pyproject.toml README.md ./
COPY paretonas ./paretonas
COPY paretonas_core ./paretonas_core
COPY search_spaces ./search_spaces
COPY evaluators ./evaluators
COPY surrogate ./surrogate
COPY service ./service
# ray[default]: `ray start --head` with its dashboard
RUN pip install . "ray[default,tune]" \
 && useradd --create-home --uid 1000 paretonas \
 && mkdir -p /data /var/lib/paretonas \
 && chown paretonas /data /var/lib/paretonas

USER paretonas
# Data users may reference in studies lives under /data (a read-only volume in compose);
# search_spaces.paths rejects anything outside it.
ENV PARETONAS_DATA_DIRS=/data \
    PARETONAS_DATABASE_URL=sqlite:////var/lib/paretonas/paretonas.db
VOLUME ["/data", "/var/lib/paretonas"]
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --retries=5 \
  CMD ["python", "-m", "service.interfaces.healthcheck", "--api", "http://127.0.0.1:8000"]

# The API listens beyond loopback, so it needs PARETONAS_API_KEYS (or --insecure behind a proxy).
CMD ["paretonas", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "0"]
