# syntax=docker/dockerfile:1
# One image per function, all from this file:
#   docker build --build-arg FUNCTION=transformer -t tarn-transformer .
# FUNCTION is a folder under functions/. Every image carries the whole tarn package
# (and its `tarn` CLI, which the CronJobs run); only the function it serves differs.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, read from pyproject.toml alone, so that editing the sources does
# not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['postgres']))" \
        > requirements.txt \
    && pip install -r requirements.txt
# The package, and the folders pyproject.toml force-includes into it.
COPY README.md ./
COPY lib ./lib
COPY functions ./functions
COPY detections ./detections
COPY eventing ./eventing
COPY samples ./samples
RUN pip install --no-deps .

FROM ${PYTHON_IMAGE} AS base
ARG FUNCTION
# No TARN_* variable here: tarn reads every one of them as configuration.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
LABEL dev.tarn.function=${FUNCTION}
RUN groupadd --system --gid 10001 tarn \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin tarn
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY functions/${FUNCTION}/ /app/function/
RUN if [ -z "${FUNCTION}" ] || [ ! -f /app/function/main.py ]; then \
      echo "build with --build-arg FUNCTION=<a folder of functions/ that has main.py>" >&2; \
      exit 1; \
    fi
EXPOSE 8080
USER 10001:10001
CMD ["functions-framework", "--target", "handle", "--source", "/app/function/main.py", "--port", "8080"]

# `skaffold dev`: tarn installed editable from /app (the repository's layout), owned by the
# runtime user, so that synced sources replace the running ones. Run with DEBUG=true.
FROM base AS dev
USER root
COPY pyproject.toml README.md /app/
COPY lib /app/lib
COPY functions /app/functions
COPY detections /app/detections
COPY eventing /app/eventing
COPY samples /app/samples
RUN pip install --no-deps -e /app && chown -R 10001:10001 /app
USER 10001:10001

# The default (last) stage: what `skaffold run` and a plain `docker build` produce.
FROM base AS runtime
