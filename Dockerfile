# One image for the meters (`python -m simulator run ...`) and the bridge (the default command); see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the wheel needs (.dockerignore keeps tests, bench, docs and the venv out of the context). No extras: the
# containers run meters, bridge and `python -m broker mosquitto-auth`, never amqtt, pyarrow or matplotlib.
COPY pyproject.toml README.md ./
COPY config ./config
COPY simulator ./simulator
COPY bridge ./bridge
COPY broker ./broker
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --user-group --create-home --shell /usr/sbin/nologin fleet \
    && install -d -o fleet -g fleet -m 0750 /var/lib/fleet

# The meters' outbox and the bridge's history. Compose mounts a named volume here: a new volume takes the owner of the
# image's directory, so the user fleet can write it.
ENV FLEET_DATA_DIR=/var/lib/fleet

# Run from a directory without the sources, so the installed packages are what runs.
WORKDIR /home/fleet
USER fleet

EXPOSE 5000

# Compose overrides this for the meters; the bridge listens on all interfaces of the container.
CMD ["python", "-m", "bridge", "--host", "0.0.0.0", "--port", "5000"]
