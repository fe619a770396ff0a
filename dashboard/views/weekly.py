"""Weekly review: the report `aiwatch export weekly` writes, previewed and offered as downloads."""
from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboard import client, export, ui

ctx = ui.page("Weekly review", "SLOs, incidents, review items, cost, canaries and failing routes for one ISO week")

today = datetime.now(UTC).date()
weeks = [export.iso_week(None, today - timedelta(days=7 * i))[0] for i in range(0, 12)]
current = export.iso_week(today.strftime("%G-W%V"), today)[0]
options = [current] + weeks
linked = st.query_params.get("week")
if linked and linked not in options:
    try:
        options.insert(0, export.iso_week(linked)[0])
    except ValueError:
        st.warning(f"`week={linked}` in the link is not an ISO week like 2026-W47; showing the last complete week.")
        linked = None
@st.cache_data(ttl=300, show_spinner=False)
def week_with_data(server_url: str, token: str) -> str:
    return export.default_week(client.client_for(server_url, token))


fallback = week_with_data(ctx.server_url, ctx.token)
if fallback not in options:
    options.append(fallback)
default = options.index(export.iso_week(linked)[0]) if linked else options.index(fallback)
week = st.selectbox("Week", options, index=default,
                    help="ISO week; the default is the last complete week with data.")


@st.cache_data(ttl=300, show_spinner="Building the weekly review\u2026")
def review_for(server_url: str, token: str, week: str) -> export.WeeklyReview:
    return export.build_weekly_review(client.client_for(server_url, token), week)


review = review_for(ctx.server_url, ctx.token, week)
if all(not s.tables for s in review.sections) and any("could not be read" in n for s in review.sections for n in s.notes):
    ui.server_down(ctx.server_url)
    st.stop()

html_bytes = export.to_html(review).encode()
md_text = export.to_markdown(review)
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
    for name, frame in review.tables().items():
        zf.writestr(f"{name}.csv", frame.to_csv(index=False))
c1, c2, c3 = st.columns(3)
c1.download_button("Download HTML", html_bytes, f"weekly-review-{review.week}.html", "text/html")
c2.download_button("Download Markdown", md_text, f"weekly-review-{review.week}.md", "text/markdown")
c3.download_button("Download tables (CSV, zip)", buffer.getvalue(), f"weekly-review-{review.week}-csv.zip",
                   "application/zip")

cols = st.columns(2)
for i, (heading, lines) in enumerate(review.summary.items()):
    with cols[i % 2]:
        st.markdown(f"**{heading}**")
        st.text("\n".join(f"\u2022 {line}" for line in lines))   # telemetry text: never Markdown

st.header("Details")
for section in review.sections:
    st.subheader(section.title)
    for note in section.notes:
        st.caption(note)
    for name, frame in section.tables.items():
        st.markdown(f"**{name.replace('_', ' ').capitalize()}**")
        ui.table(export.humanize(frame))
