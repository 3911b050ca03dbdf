"""`ttsplan` with the engine and verifier loaders replaced by the fakes of tests.fake_calibration,
so that kill tests run the real command line (`python -m tests.fake_ttsplan calibrate ...`);
FAKE_ENGINE_DELAY_S slows each generate call down so that a kill lands mid-run."""

from __future__ import annotations

import os
import sys
import time

from planner.cli.main import main
from planner.executor import factory
from tests import fake_calibration

DELAY_S = float(os.environ.get("FAKE_ENGINE_DELAY_S", "0"))  # per generate call: time to kill in


class SlowEngine(fake_calibration.GoldEngine):
    def generate(self, prompts, options):
        time.sleep(DELAY_S)
        return super().generate(prompts, options)


def load_engine(kind: str, policy: str, seed: int) -> SlowEngine:
    return SlowEngine(name=policy)


factory.load_engine = load_engine
factory.load_verifier = fake_calibration.load_verifier

if __name__ == "__main__":
    main(sys.argv[1:])
