"""Loading a base model leaves the process's transformers logging as it found it."""

from transformers.utils import logging

from loramem.models import load_base


def test_loading_restores_transformers_logging(tiny_model_dir):
    logging.set_verbosity_info()
    logging.enable_progress_bar()
    try:
        load_base(str(tiny_model_dir))
        assert logging.get_verbosity() == logging.INFO
        assert logging.is_progress_bar_enabled()
    finally:
        logging.set_verbosity_warning()
