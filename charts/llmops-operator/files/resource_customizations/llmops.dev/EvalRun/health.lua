-- Argo CD health of an llmops.dev EvalRun: Progressing while it is pending or running, Healthy
-- when it passed, Degraded when it failed (assertions or criteria) or could not be judged (Error).
local hs = {}
local status = obj.status or {}
local phase = status.phase or "Pending"
local message = status.message or ""
if phase == "Passed" then
  hs.status = "Healthy"
  hs.message = "Passed"
  if status.candidate ~= nil and status.candidate.passRate ~= nil then
    hs.message = hs.message .. " with pass rate " .. status.candidate.passRate
  end
elseif phase == "Failed" or phase == "Error" then
  hs.status = "Degraded"
  hs.message = phase .. ": " .. message
else
  hs.status = "Progressing"
  hs.message = "Eval run is " .. string.lower(phase)
end
return hs
