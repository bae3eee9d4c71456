"""Jobs choose their output (container, codecs, quality, size, a thumbnail and a preview), and
record the images they made beside the clip.

- jobs.output: the choices that differ from the defaults (domain.outputs.OutputOptions);
  NULL: every default, which is what each earlier job was.
- jobs.result_thumbnail_key, jobs.result_preview_key: where the images are stored, like
  result_video_key (one column per kind of result, as before; retention deletes a job's
  whole result folder, images included).

Revision ID: 0012_output_options
Revises: 0011_upload_media
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012_output_options"
down_revision = "0011_upload_media"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("output", postgresql.JSONB()))
    op.add_column("jobs", sa.Column("result_thumbnail_key", sa.Text()))
    op.add_column("jobs", sa.Column("result_preview_key", sa.Text()))


def downgrade() -> None:
    op.drop_column("jobs", "result_preview_key")
    op.drop_column("jobs", "result_thumbnail_key")
    op.drop_column("jobs", "output")
