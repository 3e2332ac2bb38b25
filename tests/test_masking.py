"""Masking the buyer's phone, address and email (rulebook §4: customer data stays private)."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from aftersales.domain.masking import (
    MaskingFilter,
    install_log_masking,
    mask_address,
    mask_contact,
    mask_email,
    mask_phone,
    mask_text,
)


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("138 1234 5678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("+86 138 1234 5678", "+86 138****5678"),
        ("+8613812345678", "+86 138****5678"),
        ("0086-138-1234-5678", "+86 138****5678"),
        ("0571-88123456", "057****3456"),  # a landline keeps its shape
        ("1234", "****"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("浙江省杭州市西湖区文三路 123 号 4 幢 501", "浙江省杭州市西湖区****"),
        ("北京市朝阳区建国路88号SOHO现代城", "北京市朝阳区****"),
        ("上海市浦东新区世纪大道100号", "上海市浦东新区****"),
        ("新疆维吾尔自治区乌鲁木齐市天山区解放北路1号", "新疆维吾尔自治区乌鲁木齐市天山区****"),
        ("江苏省苏州市昆山市前进中路 9 号", "江苏省苏州市昆山市****"),
        ("广东省 深圳市 南山区 科技园 1 号", "广东省深圳市南山区****"),
        # no district: the housing estate and the street are not taken for one
        ("浙江省杭州市阳光小区3幢", "浙江省杭州市****"),
        ("浙江省杭州市文三路小区3幢", "浙江省杭州市****"),
        ("文三路 123 号", "****"),
        ("1600 Amphitheatre Pkwy, Mountain View, CA 94043, USA", "****, Mountain View, CA, USA"),
        ("Flat 5, 221B Baker Street, London NW1 6XE, United Kingdom", "****, London, United Kingdom"),
        ("Apt 4B, 350 Fifth Avenue, New York, NY 10118", "****, New York, NY"),
        ("10 Downing Street", "****"),
        ("", ""),
    ],
)
def test_mask_address_keeps_the_region_only(address, masked):
    assert mask_address(address) == masked


def test_mask_email_and_contact():
    assert mask_email("zhang.san@example.com") == "z***@example.com"
    assert mask_email("a@example.com") == "***@example.com"
    assert mask_email("not an email") == "****"
    assert mask_contact("zhang.san@example.com") == "z***@example.com"
    assert mask_contact("13812345678") == "138****5678"


def test_mask_text_finds_phones_and_emails_in_free_text():
    text = ("买家张三来电13812345678,备用 +86 139-0000-1111,邮箱 13812345678@163.com;"
            "英文邮箱 li.si@example.com")
    assert mask_text(text) == (
        "买家张三来电138****5678,备用 +86 139****1111,邮箱 1***@163.com;英文邮箱 l***@example.com"
    )


def test_mask_text_leaves_order_and_tracking_numbers_alone():
    text = "订单 O20261122-001,运单 SF1234567890123,金额 13812345678901 分,编号 A13812345678"
    assert mask_text(text) == text


def test_masking_twice_changes_nothing_more():
    once = mask_text("电话 13812345678 邮箱 zhang.san@example.com")
    assert mask_text(once) == once


def test_the_masking_module_does_not_import_prefect():
    code = "import sys, aftersales.domain.masking; print('prefect' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- logs ----------------------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def collected():
    """A logger with a collecting handler; everything we attach is taken off again."""
    logger = logging.getLogger("aftersales.test_masking")
    handler = _Collect()
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)
    logger.propagate = True


def test_masking_filter_masks_message_args_and_traceback(collected):
    logger, handler = collected
    handler.addFilter(MaskingFilter())

    logger.warning("buyer %s wrote from %s", "13812345678", "zhang.san@example.com")
    try:
        raise ValueError("cannot reach 13812345678")
    except ValueError:
        logger.exception("refund for %s failed", "13812345678")

    text = "\n".join(handler.lines)
    assert "13812345678" not in text and "zhang.san@" not in text
    assert "buyer 138****5678 wrote from z***@example.com" in text
    assert "ValueError: cannot reach 138****5678" in text


@pytest.fixture
def restore_logging_filters():
    names = ["", "prefect", "prefect.flow_runs", "prefect.task_runs", "apprise"]
    loggers = [logging.getLogger(name) for name in names]
    before = {id(f): list(f.filters) for f in loggers + [h for lg in loggers for h in lg.handlers]}
    yield
    for filterer in loggers + [h for lg in loggers for h in lg.handlers]:
        if id(filterer) in before:
            filterer.filters[:] = before[id(filterer)]
        else:
            filterer.filters[:] = [f for f in filterer.filters if not isinstance(f, MaskingFilter)]


def test_install_log_masking_covers_prefect_run_loggers_and_root_handlers(restore_logging_filters):
    flow_runs = logging.getLogger("prefect.flow_runs")
    api_like = _Collect()  # stands for Prefect's API log handler on the flow run logger
    flow_runs.addHandler(api_like)
    root_handler = _Collect()
    logging.getLogger().addHandler(root_handler)
    try:
        installed = install_log_masking()
        assert install_log_masking() is installed  # idempotent: one filter, attached once

        flow_runs.warning("calling buyer at %s", "13812345678")
        logging.getLogger("httpx").warning("POST /buyers/13812345678/notify")
    finally:
        flow_runs.removeHandler(api_like)
        logging.getLogger().removeHandler(root_handler)

    assert api_like.lines == ["calling buyer at 138****5678"]
    assert "POST /buyers/138****5678/notify" in root_handler.lines
    assert not any("13812345678" in line for line in root_handler.lines)
    assert sum(isinstance(f, MaskingFilter) for f in flow_runs.filters) == 1
