"""arq's ``Worker`` with a job claim that does not grow with the jobs in flight.

arq claims jobs one at a time: every poll (``poll_delay``, 50 ms here) it reads up to
``queue_read_limit`` job ids from the head of the queue and, for each in turn, runs a WATCH /
EXISTS / ZSCORE / MULTI-PSETEX-EXEC transaction (four round trips, awaited one after the
other). A job stays in the queue until it finishes, so with hundreds of slow channel calls in
flight every poll re-examined every running job (~1,500 round trips per poll at 500 jobs),
and new jobs waited behind that serial claim (found with py-spy in ``bench e2e``).

Here the ids this worker is already running are dropped first (their in-progress key exists:
arq would refuse them anyway), and the rest are claimed in ONE round trip by a Lua script
that makes, atomically per job, exactly arq's checks: no in-progress key, still queued, due
now; then sets the in-progress key with arq's timeout. Starting the claimed jobs (the
semaphore, the job counter, the task and its done-callback) is arq's own bookkeeping.
"""

from __future__ import annotations

from typing import Any

from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker

# KEYS[1]: the queue; ARGV: now (ms), in-progress TTL (ms), key prefix, job ids.
# Returns the claimed ids, each followed by its score.
_CLAIM = """
local now = tonumber(ARGV[1])
local claimed = {}
for i = 4, #ARGV do
    local job_id = ARGV[i]
    local in_progress = ARGV[3] .. job_id
    if redis.call('exists', in_progress) == 0 then
        local score = redis.call('zscore', KEYS[1], job_id)
        if score and tonumber(score) <= now then
            redis.call('psetex', in_progress, ARGV[2], '1')
            claimed[#claimed + 1] = job_id
            claimed[#claimed + 1] = score
        end
    end
end
return claimed
"""


class PayfrontWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claim_script: Any = None

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        room = self.max_jobs - self.job_counter
        if room <= 0:
            return
        running = self.tasks
        claimable: list[str] = []
        for raw in job_ids:
            job_id = raw.decode()
            task = running.get(job_id)
            # A finished task not yet swept (the poll sweeps after starting jobs) may be a
            # job re-enqueued under the same id: the script decides about that one.
            if task is None or task.done():
                claimable.append(job_id)
                if len(claimable) == room:
                    break
        if not claimable:
            return
        if self._claim_script is None:
            self._claim_script = self.pool.register_script(_CLAIM)
        ttl_ms = int(self.in_progress_timeout_s * 1000)
        answer = await self._claim_script(
            keys=[self.queue_name],
            args=[timestamp_ms(), ttl_ms, in_progress_key_prefix, *claimable],
        )
        for index in range(0, len(answer), 2):
            job_id = answer[index].decode() if isinstance(answer[index], bytes) else answer[index]
            score = int(float(answer[index + 1]))
            await self.sem.acquire()
            self.job_counter += 1
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task
