def detect(record):
    if record.deepget("event.action") != "repo.access":
        return False
    visibility = record.deepget("github.visibility")
    if visibility is not None:
        return str(visibility).lower() == "public"
    return record.deepget("github.repository_public") is True


def title(record):
    return (
        f"{record.deepget('user.name', 'someone')} made {record.deepget('github.repo', 'a repository')}"
        " public"
    )


def dedupe(record):
    return record.deepget("github.repo") or record.deepget("github.repo_id") or "unknown"


def alert_context(record):
    return {
        "actor": record.deepget("user.name"),
        "repository": record.deepget("github.repo"),
        "organization": record.deepget("organization.name"),
        "source_ip": record.deepget("source.ip"),
        "actor_identity": record.deepget("github.external_identity_nameid"),
    }
