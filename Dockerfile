# strategy-bot: the Slack bot (`strategy-bot serve`), with the index of the shipped documents built in.
#   docker build -t strategy-bot .
#   docker run --env-file .env -p 3000:3000 strategy-bot          # HTTP mode (SLACK_SIGNING_SECRET)
#   docker run --env-file .env strategy-bot                       # Socket Mode (SLACK_APP_TOKEN set)
# Keep the bot's state across container restarts with a named volume on /app/data (Docker copies the
# built index into a new named volume on first use; a bind mount would hide it and it is rebuilt at start).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/app/data \
    KNOWLEDGE_DIR=/app/documents \
    HOST=0.0.0.0 \
    PORT=3000

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin bot
WORKDIR /app

# Dependencies only, from pyproject.toml: this layer is rebuilt when the dependencies change, not the code.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The application itself (no dependencies left to resolve); KNOWLEDGE_DIR is a writable copy of the
# shipped documents, so admins can add documents from Slack.
COPY README.md ./
COPY bot ./bot
COPY knowledge ./knowledge
COPY retrieval ./retrieval
COPY decision ./decision
COPY prompts ./prompts
COPY strategy_bot ./strategy_bot
RUN pip install --no-deps . \
    && mkdir -p /app/data \
    && cp -r /app/knowledge/corpus /app/documents \
    && chown -R bot:bot /app/data /app/documents

USER bot
# The index of the shipped documents, built now so the container answers seconds after it starts.
RUN strategy-bot index

EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"
CMD ["strategy-bot", "serve"]
