"""Operations: verified backups and restores, retention, failure alerts."""
