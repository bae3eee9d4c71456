"""Jobs record where their subtitles came from: an uploaded .srt, the source's own track, or
speech recognition of the segment (with the model, the language heard and a note when empty).

- jobs.subtitles: domain.subtitles.SubtitlesMade.to_json(), set when a with_subtitles job is
  done; NULL before (and for every job without subtitles, as for the jobs made before).

Revision ID: 0015_subtitle_sources
Revises: 0014_queue_workers
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015_subtitle_sources"
down_revision = "0014_queue_workers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("subtitles", postgresql.JSONB()))


def downgrade() -> None:
    op.drop_column("jobs", "subtitles")
