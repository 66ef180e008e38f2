from __future__ import annotations

from deepfolder.records import Evidence
from deepfolder.request_model import parse_request
from deepfolder.validate.checks import validate_report
from deepfolder.validate.citations import check_citations, find_citations
from deepfolder.validate.grounding import body_sections

from .reports import REQUEST, good_report

OWN = REQUEST.replace("请撰写", "请基于我提供的PDF和讲座视频，撰写")


def _check(text: str, by_id, seen, request: str = OWN):
    report = validate_report(text, parse_request(request), resolve=by_id.get, seen_ids=seen)
    check = report.check("user_material")
    assert check is not None
    return report, check


def test_every_section_cites_the_users_files(evidence: dict[str, Evidence], by_id, seen) -> None:
    report, check = _check(good_report(evidence), by_id, seen)
    assert check.passed is True, check.details
    assert check.measured == "3/3 sections cite the user's files"
    assert "lecture.mp4" in check.expected and "直播电商高质量发展.pdf" in check.expected
    assert report.passed, report.failures


def test_a_section_citing_only_collection_articles_fails(evidence, by_id, seen) -> None:
    vid = evidence["video"].id
    text = good_report(evidence).replace(
        f"主播若存在虚假宣传，可能被认定为广告发布者并承担法律责任[{vid}]。", ""
    )
    report, check = _check(text, by_id, seen)
    assert check.failed
    assert check.details == [
        "section '（3）案例分析' cites only 1 collection article(s), none of the user's files"
    ]
    assert report.ungrounded_sections == ["（3）案例分析"]
    assert not report.passed
    # the same report for a request that does not build on the user's files is fine
    _, plain = _check(text, by_id, seen, REQUEST)
    assert plain.passed is None and plain.severity == "warning"


def test_a_section_citing_nothing_fails(evidence, by_id, seen) -> None:
    text = good_report(evidence).replace(
        "## （4）参考资料",
        "## 结语\n\n综上所述，直播带货的合规治理需要平台、主播与监管部门共同努力，形成长效机制，"
        "推动行业在规范中健康发展。\n\n## （4）参考资料",
    )
    _, check = _check(text, by_id, seen)
    assert check.failed and check.details == [
        "section '结语' cites nothing, none of the user's files"
    ]


def test_no_user_material_in_the_run_is_not_a_failure(evidence, by_id) -> None:
    art = evidence["article"]
    text = f"# 分析\n\n## 一、案例\n\n法院认为，平台直接获取经济利益的，应当负有更高的审核注意义务[{art.id}]。这一裁判思路值得关注。\n"
    report, check = _check(text, by_id, {art.id})
    assert check.passed is None and check.severity == "warning"
    assert check.details == [
        "the request builds on the user's paper, video, but the run saw none of it"
    ]
    assert "user_material" not in " ".join(report.failures)


def test_named_kinds_the_run_lacks_are_reported_not_failed(evidence, by_id, seen) -> None:
    request = REQUEST.replace("请撰写", "请基于我提供的PDF和录音，撰写")
    _, check = _check(good_report(evidence), by_id, seen, request)
    assert check.passed is True
    assert check.details == ["the request names audio; the run saw none (not a failure)"]


def test_body_sections_group_subsections_and_skip_references(evidence, by_id) -> None:
    p5, art = evidence["pdf5"].id, evidence["article"].id
    md = (
        "# T\n\n导语。\n\n## 一、背景\n\n### 1.1 规模\n\n规模很大[" + p5 + "]。\n\n"
        "### 1.2 案例\n\n案例如下[" + art + "]。\n\n## 二、结论\n\n结论。\n\n"
        "## 参考资料\n\n1. [" + p5 + '] x — "…"\n'
    )
    from deepfolder.validate.document import reference_section_lines

    skip = reference_section_lines(md)
    cites = check_citations(find_citations(md, skip), by_id.get, None, "zh")
    units = body_sections(md, skip, cites, "字")
    assert [(u.title, u.first_line, u.end_line) for u in units] == [
        ("一、背景", 4, 14),
        ("二、结论", 14, 18),
    ]
    assert [len(u.evidence) for u in units] == [2, 0]
    assert units[0].cites_user_material and not units[1].cites_user_material


def test_a_report_of_h1_sections(evidence, by_id, seen) -> None:
    text = good_report(evidence).replace("## （", "# （")
    vid = evidence["video"].id
    _, check = _check(text, by_id, seen)
    assert check.passed is True and check.measured == "3/3 sections cite the user's files"
    text = text.replace(f"主播若存在虚假宣传，可能被认定为广告发布者并承担法律责任[{vid}]。", "")
    _, check = _check(text, by_id, seen)
    assert check.failed and "'（3）案例分析'" in check.details[0]
