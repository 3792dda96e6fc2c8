// slotcast — the operator's filler page: the uploads' progress, polled once a second
// while ffmpeg works, and the page again when one is done.
const box = document.getElementById("jobs");
if (box) {
  const d = box.dataset;
  const busy = () => box.querySelector('li[data-state="encoding"]');
  const poll = async () => {
    try {
      const { jobs } = await (await fetch(d.jobs, { cache: "no-store" })).json();
      for (const j of jobs) {
        const li = document.getElementById(`job-${j.id}`);
        if (!li) { location.reload(); return; }
        if (li.dataset.state === "encoding" && j.state !== "encoding") { location.reload(); return; }
        li.querySelector("progress").value = j.percent;
        li.querySelector(".job-state").textContent = j.state === "done" ? d.done
          : j.state === "failed" ? d.failed : `${j.percent} %`;
      }
    } catch { /* the next round tries again */ }
    if (busy()) setTimeout(poll, 1000);
  };
  if (busy()) setTimeout(poll, 1000);
}
